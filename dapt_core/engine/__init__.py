"""The tuning engine: a frozen CLIP backbone, text and visual prompts, the dispersion losses, methods and
their settings, the training loop, evaluation and metrics, zero-shot classifiers, the prompt file and
inference from it. Import the modules themselves (e.g. `dapt_core.engine.training`); this package
imports nothing so that reaching a light module does not load torch."""
