"""From a prompt file to the inspection line: calibrated probabilities and the unknown flag's threshold
(calibration), prediction sets (conformal), the good class and the pass threshold (pass_fail), one answer
per photo whichever engine computed it (prediction), heatmaps from tiles (heatmaps), a folder of photos to
CSV (batch_predict), the ONNX export (onnx_export) and its torch-free runner (onnx_runner), and latency
and memory on this machine (latency). The novelty score the unknown flag thresholds is the engine's
(engine.novelty): it is computed on the tuned features.

calibration, conformal, pass_fail, prediction, heatmaps and onnx_runner need only numpy and Pillow (plus
onnxruntime for the runner), so a line PC runs them without torch. The engine's experiment fits the
calibration and its Classifier answers through `prediction.Decision`: those decision modules are the one
part of deploy the engine may import (tests/test_layering.py). Import the modules themselves; this
package imports nothing so that reaching a light module does not load torch."""
