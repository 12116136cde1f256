"""DAPT Studio's engine: Distribution-Aware Prompt Tuning of CLIP, with no user-interface code.

    from dapt_core import Classifier
    classifier = Classifier.load("prompts.safetensors")
    classifier.predict(["part.jpg"])
"""

__version__ = "0.1.0"


def __getattr__(name):
    # Imported lazily so that `import dapt_core` (e.g. for the version) does not pay for torch.
    if name == "Classifier":
        from .inference import Classifier
        return Classifier
    raise AttributeError(f"module 'dapt_core' has no attribute {name!r}")
