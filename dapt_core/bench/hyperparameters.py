"""The recipe's hyperparameters of a benchmark run, as data: per-data-set learning rate and betas, CoOp's
learning rate, and the settings a user may override.

("Hyperparameters" rather than "preset", which names the training augmentation, engine.augmentation_presets.
A result file keeps its older keys "preset" and "preset_source" for them.)
"""

from __future__ import annotations

from ..engine.methods import METHODS, TuningConfig, epochs_for_shots
from ..errors import ConfigError

# The reference code's per-data-set settings (recipe: "Per-dataset settings"): lr, beta_v, beta_t.
RECIPE_HYPERPARAMETERS: dict[str, tuple[float, float, float]] = {
    "Caltech101": (0.2, 10.0, 0.01),
    "DTD": (20.0, 100.0, 0.01),
    "EuroSAT": (20.0, 100.0, 10.0),
    "FGVCAircraft": (2.0, 100.0, 0.01),
    "Food101": (20.0, 10.0, 0.01),
    "ImageNet": (2.0, 0.01, 0.01),
    "Flowers102": (0.002, 10.0, 0.01),  # "OxfordFlowers" in the reference code
    "OxfordPets": (0.02, 10.0, 0.1),
    "StanfordCars": (0.002, 100.0, 0.1),
    "SUN397": (20.0, 100.0, 0.01),
    "UCF101": (20.0, 0.1, 0.1),
}
# CoOp's published configuration trains its context with lr 0.002 on every data set.
COOP_LR = 0.002
# Settings a user may override, as (command-line flag, TuningConfig field).
OVERRIDABLE = (("epochs", "epochs"), ("lr", "lr"), ("beta_v", "beta_v"), ("beta_t", "beta_t"),
               ("batch_size", "batch_size"), ("eval_batch_size", "eval_batch_size"), ("n_ctx", "n_ctx"),
               ("n_vis", "n_vis"), ("templates", "templates"), ("deep", "deep_visual"))


# ----------------------------------------------------------------------------------- hyperparameters
def recipe_hyperparameters(dataset: str, method: str, shots: int) -> tuple[dict, str]:
    """The recipe's settings for `method` at `shots` shots on `dataset`, and where they come from.

    dapt: the reference code's lr, beta_v and beta_t of the data set; coop: CoOp's lr 0.002; vpt: the data
    set's DAPT lr (the recipe has no VPT table; ours); zeroshot trains nothing. Epochs follow the recipe's
    rule by shots (ImageNet: 50 at every shot count).
    """
    from ..data.datasets import DOMAIN_SHIFT_TARGETS, canonical_name

    canonical = canonical_name(dataset)
    if canonical in DOMAIN_SHIFT_TARGETS:
        raise ConfigError(f"{canonical} is a test-only domain-generalisation target; tune on ImageNet with "
                          f"`dapt bench --dataset ImageNet --shots 16`, then evaluate with `dapt bench dg`.")
    if method not in METHODS:
        raise ConfigError(f"Unknown method '{method}'. Choose one of: {', '.join(METHODS)}.")
    lr, beta_v, beta_t = RECIPE_HYPERPARAMETERS[canonical]
    epochs = epochs_for_shots(shots, canonical)
    if method == "dapt":
        return {"lr": lr, "beta_v": beta_v, "beta_t": beta_t, "epochs": epochs}, f"recipe, {canonical}"
    if method == "coop":
        return {"lr": COOP_LR, "epochs": epochs}, "CoOp (lr 0.002 on every data set)"
    if method == "vpt":
        return {"lr": lr, "epochs": epochs}, f"recipe lr of {canonical} (ours: the recipe has no VPT table)"
    return {}, "zero-shot: nothing is trained"


def bench_config(dataset: str, method: str, shots: int, seed: int, overrides: dict | None = None):
    """The TuningConfig of one run: the recipe's hyperparameters, then `overrides` (TuningConfig field ->
    value) on top.

    Returns (config, hyperparameters, where they come from, overrides actually applied).
    """

    hyperparameters, source = recipe_hyperparameters(dataset, method, shots)
    applied = {k: v for k, v in (overrides or {}).items() if v is not None}
    if method == "zeroshot":
        # Nothing trains: only the settings that shape evaluation can matter.
        applied = {k: v for k, v in applied.items() if k in ("templates", "eval_batch_size")}
    # The paper's protocol: the recipe's augmentation, whatever the engine's default preset is.
    config = TuningConfig(method=method, seed=seed, preset="recipe", **{**hyperparameters, **applied})
    return config, hyperparameters, source, applied
