"""From a prompt file to the inspection line: the unknown flag (novelty), calibrated probabilities
(calibration), prediction sets (conformal), one answer per photo whichever engine computed it
(prediction), a folder of photos to CSV (batch_predict), the ONNX export (onnx_export) and its
torch-free runner (onnx_runner), and latency and memory on this machine (latency).

calibration, conformal, prediction and onnx_runner need only numpy and Pillow (plus onnxruntime for the
runner), so a line PC runs them without torch. The engine's experiment fits the calibration and its
Classifier answers through `prediction.Decision`. Import the modules themselves; this package imports
nothing so that reaching a light module does not load torch."""
