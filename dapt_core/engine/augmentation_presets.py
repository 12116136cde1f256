"""The training augmentation presets by name, and the one check of a preset setting.

engine.augment says what each preset does to a photo (and needs torch); engine.methods holds every
setting of a run and must stay free of torch (the command line reads it before loading the engine).
Both read the names and the check from here, so neither imports the other for them.
"""

from __future__ import annotations

from ..errors import ConfigError

# "inspection" for `dapt tune` and the app, "recipe" (the paper's) for `dapt bench`.
AUGMENTATION_PRESETS = ("inspection", "recipe")
DEFAULT_PRESET = "inspection"


def check_preset(preset: str, rotations: bool = False) -> None:
    """Refuse a preset that does not exist, and 90-degree turns under the recipe's preset."""
    if preset not in AUGMENTATION_PRESETS:
        raise ConfigError(f"Unknown preset '{preset}'. Choose one of: {', '.join(AUGMENTATION_PRESETS)}.")
    if preset == "recipe" and rotations:
        raise ConfigError("The recipe preset has no 90-degree turns (the paper's augmentation); "
                          "use the inspection preset to allow them.")
