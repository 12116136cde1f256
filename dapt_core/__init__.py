"""DAPT Studio's library: Distribution-Aware Prompt Tuning of CLIP, with no user-interface code.

    from dapt_core import Classifier
    classifier = Classifier.load("prompts.safetensors")
    classifier.predict(["part.jpg"], coverage=0.95)  # class, calibrated probability, unknown flag, set

    from dapt_core import OnnxClassifier  # the ONNX export, run with ONNX Runtime alone (no torch)
    OnnxClassifier("model.onnx").predict(["part.jpg"])

Subpackages, each importing only from those listed before it:

    errors, atomic   the error types every layer raises; crash-safe file writes
    data             labelled-image records, image intake, class folders, few-shot draws, benchmark readers
    engine           the frozen backbone, prompts, losses, methods, training, evaluation, the unknown check
                     (novelty) and the prompt file
    deploy           the inspection line: calibration, pass/fail, prediction sets, heatmaps, folders to CSV,
                     ONNX (the one exception to the order: the engine's experiment and Classifier use its
                     torch-free decision modules; tests/test_layering.py states and checks the rule)
    demo             the procedural demo task and its renderer
    bench            the paper-benchmark runner and its report tables
    studio           the app's backend: projects on disk, background jobs, embedding maps, the HTML report
    cli              the `dapt` command
"""

__version__ = "0.1.0"

# The public API, imported lazily so that `import dapt_core` (e.g. for the version) does not pay for torch.
_PUBLIC = {
    "Classifier": "engine.inference",
    "Prediction": "deploy.prediction",
    "Decision": "deploy.prediction",
    "OnnxClassifier": "deploy.onnx_runner",
    "export_onnx": "deploy.onnx_export",
    "expand_inputs": "deploy.batch_predict",
    "predict_paths": "deploy.batch_predict",
    "write_csv": "deploy.batch_predict",
    "TuningConfig": "engine.methods",
    "METHODS": "engine.methods",
    "load_backbone": "engine.backbone",
    "run_experiment": "engine.experiment",
    "load_split": "data.folders",
    "scan_folder": "data.folders",
    "DaptError": "errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    if name in _PUBLIC:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'dapt_core' has no attribute {name!r}")
