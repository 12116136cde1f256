"""The tuning methods by name and every setting of a run, validated where they are made.

  zeroshot  no training: open_clip's zero-shot templates, averaged per class
  coop      text prompt only, cross-entropy
  vpt       visual prompt only, cross-entropy (the zero-shot class embeddings as classifier)
  dapt      both prompts, cross-entropy + beta_v * intra-dispersion + beta_t * inter-dispersion
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..errors import ConfigError
from .augmentation_presets import AUGMENTATION_PRESETS as AUGMENTATION_PRESETS  # re-exported (CLI, app)
from .augmentation_presets import DEFAULT_PRESET, check_preset

# Every fact about the methods lives here; the CLI, the benchmark runner and the app read them.
METHODS = ("zeroshot", "coop", "vpt", "dapt")  # the paper's order, used by tables
METHODS_RECOMMENDED_FIRST = ("dapt", "coop", "vpt", "zeroshot")  # the order of choices offered to a user
METHOD_TITLES = {"zeroshot": "Zero-shot CLIP", "coop": "CoOp", "vpt": "VPT", "dapt": "DAPT"}
TEXT_PROMPT_METHODS = ("coop", "dapt")
VISUAL_PROMPT_METHODS = ("vpt", "dapt")
DISPERSION_METHODS = ("dapt",)  # the methods the betas weigh
# Zero-shot template sets by name (engine.zeroshot holds the templates themselves).
TEMPLATE_SET_NAMES = ("auto", "openai", "simple", "photo")
DEFAULT_SHOTS = 16
# The training augmentation presets by name, AUGMENTATION_PRESETS and DEFAULT_PRESET, live in
# engine.augmentation_presets (engine.augment says what each does); they are read from here too.

# Defaults chosen to work without a per-dataset search (the recipe's per-dataset learning rates
# span four orders of magnitude); measured on the demo task, see README.
DEFAULT_LR = 0.002
DEFAULT_BETA_V = 10.0
DEFAULT_BETA_T = 0.01


# How the learning rate is chosen (dapt tune --lr, the Tune page; engine/selection.py): the recipe's rate scaled
# to the backbone's logit scale (no trial runs), three short trial runs, or cross-validation over a grid.
LR_SCALED, LR_QUICK, LR_AUTO = "scaled", "quick", "auto"
LR_CHOICES = (LR_SCALED, LR_QUICK, LR_AUTO)

def epochs_for_shots(shots: int, dataset: str | None = None) -> int:
    """The recipe's epoch count: 1 shot 50; 2 and 4 shots 100; 8 and more 200; ImageNet always 50."""
    if dataset is not None and dataset.lower() == "imagenet":
        return 50
    if shots <= 1:
        return 50
    if shots <= 4:
        return 100
    return 200


@dataclass
class TuningConfig:
    """Every setting of a tuning run. Betas left as None take the method's defaults."""

    method: str = "dapt"
    epochs: int | None = None
    lr: float = DEFAULT_LR
    beta_v: float | None = None
    beta_t: float | None = None
    n_ctx: int = 16
    n_vis: int = 16
    deep_visual: bool = False
    batch_size: int = 32
    eval_batch_size: int = 100
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 1
    warmup_lr: float = 1e-5
    inter_temperature: float = 2.0
    templates: str = "auto"  # zero-shot template set: the classifier of zeroshot and vpt, and "before"
    seed: int = 1
    preset: str = DEFAULT_PRESET  # training augmentation, one of AUGMENTATION_PRESETS; see augment.py
    rotations: bool = False  # inspection preset: orientation does not matter, views may be turned by 90 degrees
    tiles: str = "off"  # look at photos in tiles too: off, auto, ROWSxCOLS or a tile side in pixels (tiling.py)
    tile_overlap: float = 0.25  # the share of a tile that neighbouring tiles share

    def __post_init__(self):
        self.method = str(self.method).lower()
        if self.method not in METHODS:
            raise ConfigError(f"Unknown method '{self.method}'. Choose one of: {', '.join(METHODS)}.")
        if self.method in DISPERSION_METHODS:
            self.beta_v = DEFAULT_BETA_V if self.beta_v is None else float(self.beta_v)
            self.beta_t = DEFAULT_BETA_T if self.beta_t is None else float(self.beta_t)
        else:
            if (self.beta_v or 0) != 0 or (self.beta_t or 0) != 0:
                raise ConfigError(
                    f"--beta-v/--beta-t weight DAPT's dispersion losses; method '{self.method}' has none. "
                    f"Use --method dapt, or leave the betas out.")
            self.beta_v, self.beta_t = 0.0, 0.0
        for name in ("lr", "beta_v", "beta_t", "weight_decay", "warmup_lr", "inter_temperature", "momentum"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, got {value}.")
        if self.lr == 0 and self.method != "zeroshot":
            raise ConfigError("lr must be greater than 0 for a method that trains.")
        for name in ("n_ctx", "n_vis", "batch_size", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.epochs is not None and int(self.epochs) < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}.")
        if self.warmup_epochs < 0:
            raise ConfigError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}.")
        self.preset = str(self.preset).lower()
        self.rotations = bool(self.rotations)
        check_preset(self.preset, self.rotations)
        self.tiles = self.tiling.to_text()  # refuses a setting it does not understand, with what to write

    @property
    def augmentation(self):
        """The preset as an engine.augment.Augmentation (imported here: this module stays free of torch)."""
        from .augment import Augmentation

        return Augmentation.of(self.preset, self.rotations)

    @property
    def tiling(self):
        """The tile setting as an engine.tiling.Tiling."""
        from .tiling import Tiling

        return Tiling.parse(self.tiles, float(self.tile_overlap))

    @property
    def trains(self) -> bool:
        return self.method != "zeroshot"

    @property
    def text_prompt(self) -> bool:
        return self.method in TEXT_PROMPT_METHODS

    @property
    def visual_prompt(self) -> bool:
        return self.method in VISUAL_PROMPT_METHODS

    def epochs_for(self, shots: int, dataset: str | None = None) -> int:
        return int(self.epochs) if self.epochs is not None else epochs_for_shots(shots, dataset)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TuningConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def learning_rate(epoch: int, base_lr: float, epochs: int, warmup_epochs: int = 1, warmup_lr: float = 1e-5) -> float:
    """The recipe's per-epoch schedule: constant `warmup_lr` for the warm-up epochs, then cosine.

    Matches Dassl's ConstantWarmupScheduler around CosineAnnealingLR(T_max=epochs): after the
    warm-up, epoch e uses the cosine value of step e - warmup_epochs.
    """
    if epoch < warmup_epochs:
        return warmup_lr
    step = epoch - warmup_epochs
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * step / epochs))
