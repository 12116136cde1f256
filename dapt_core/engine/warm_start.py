"""A warm start: tune from a saved prompt file's prompts instead of fresh random ones (issue 24).

A tuned run is the starting point when a class or more photos are added: the new run builds its model as
usual (the new class list, the method's prompts), then copies the stored prompts in before the first step.
The text context is shared by every class ([SOS] ctx_1..ctx_n [class name] "." [EOS], prompts.py), so a new
class needs nothing learned for it alone: its prompt is the stored context before its own name. A class that
is no longer there simply has no prompt. The stored file must come from the same backbone weights and the
same prompt shapes (method, n_ctx, n_vis, deep visual prompts); `check` says what to change where it does not.

The schedule of a warm start (`warm_schedule`): WARM_SHARE of the recipe's epochs, no warm-up epoch (the
constant tiny warm-up rate protects random prompts, not tuned ones), the same learning rate, laid out as a
cosine over the shorter run. Measured on the demo task in benchmarks/warm_start.py (README, "Add a class or
more photos without starting over").
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..errors import ConfigError
from . import prompt_file
from .methods import TuningConfig, epochs_for_shots
from .prompt_file import TEXT_CTX, VISUAL_PROMPT, PromptFile

# A warm start runs this share of the recipe's epochs (at least one) unless the run sets --epochs itself.
WARM_SHARE = 0.25
# A warm start begins with the stored classes' prompts tuned over a whole run and a new class's name never seen:
# over the short warm schedule the old classes keep that edge, and an added class ended 3.5 points below a run
# from scratch (demo task, 8 seeds, benchmarks/warm_start.py). Each epoch therefore shows a quarter of each new
# class's photos a second time (another augmented view). Measured on the same task over 11 seeds (3 of them not
# used to choose it): the new class +1.4 points and the old classes -0.2 against from scratch; showing all of
# them twice overshot (+9.6 new, -2.3 old), and a longer schedule did not help the new class (README).
NEW_CLASS_EMPHASIS = 0.25
PROMPT_NAMES = (TEXT_CTX, VISUAL_PROMPT)


@dataclass
class WarmStart:
    """The stored prompts a run continues from, and where they came from (for the new file's record)."""

    tensors: dict[str, torch.Tensor]
    prompt_file: PromptFile | None = None
    name: str | None = None  # the file's name, as the record keeps it
    sha256: str | None = None  # of the file's bytes
    classnames: list[str] = field(default_factory=list)  # the stored run's classes

    @classmethod
    def load(cls, path: str | Path) -> WarmStart:
        """Read a prompt file (never unpickles; prompt_file.load's checks and messages)."""
        path = Path(path)
        loaded = prompt_file.load(path)
        return cls.of_prompt_file(loaded, path.name, hashlib.sha256(path.read_bytes()).hexdigest())

    @classmethod
    def of_prompt_file(cls, loaded: PromptFile, name: str | None = None, sha256: str | None = None) -> WarmStart:
        tensors = {key: loaded.tensors[key] for key in PROMPT_NAMES if key in loaded.tensors}
        return cls(tensors, loaded, name, sha256, loaded.classnames)

    @classmethod
    def of(cls, source: WarmStart | PromptFile | dict | str | Path) -> WarmStart:
        """A warm start from a prompt file (loaded or a path) or a dict of prompt tensors by name."""
        if isinstance(source, WarmStart):
            return source
        if isinstance(source, PromptFile):
            return cls.of_prompt_file(source)
        if isinstance(source, (str, Path)):
            return cls.load(source)
        if isinstance(source, dict):
            return cls({key: value for key, value in source.items() if key in PROMPT_NAMES})
        raise TypeError(f"A warm start comes from a prompt file or a dict of prompt tensors, not {type(source)}.")

    @property
    def method(self) -> str | None:
        return self.prompt_file.method if self.prompt_file is not None else None

    @property
    def _source(self) -> str:
        return f"'{self.name}'" if self.name else "the stored prompt file"

    def check(self, backbone, config: TuningConfig) -> None:
        """Refuse, saying what to do, a start that does not fit this backbone and method: other backbone
        weights, another method's prompts, other n_ctx / n_vis / deep visual prompts, a class-specific context."""
        if not config.trains:
            raise ConfigError("Method 'zeroshot' learns nothing, so there is nothing to continue: leave out --from, "
                              "or choose a method that tunes prompts.")
        if self.prompt_file is not None:
            self.prompt_file.check_backbone(backbone)
        if not any(key in self.tensors for key in PROMPT_NAMES):
            raise ConfigError(f"{self._source} holds no learned prompts (method '{self.method or 'zeroshot'}'), so "
                              f"there is nothing to continue from. Tune from scratch: leave out --from.")
        wanted = [key for key, needed in ((TEXT_CTX, config.text_prompt), (VISUAL_PROMPT, config.visual_prompt))
                  if needed]
        if sorted(wanted) != sorted(self.tensors):
            stored = self.method or "+".join(sorted(self.tensors))
            raise ConfigError(
                f"{self._source} holds the prompts of method '{stored}', but this run's method '{config.method}' "
                f"learns {' and '.join(wanted)}. Continue with the same method (--method {stored}), or tune from "
                f"scratch (leave out --from).")
        for key, expected in _shapes(backbone, config).items():
            self._check_shape(key, expected, config)

    def _check_shape(self, key: str, expected: tuple[int, ...], config: TuningConfig) -> None:
        have = tuple(self.tensors[key].shape)
        if have == expected:
            return
        if key == TEXT_CTX and len(have) == 3:
            raise ConfigError(
                f"{self._source} holds a class-specific text context {have} (one per class); DAPT Studio learns one "
                f"context shared by all classes, so it cannot continue from it. Tune from scratch (leave out --from).")
        if key == TEXT_CTX:
            raise ConfigError(
                f"{self._source} has {have[0]} text context vectors of width {have[-1]}; this run wants "
                f"{expected[0]} of width {expected[-1]}. Continue with --n-ctx {have[0]} (and the file's backbone), "
                f"or tune from scratch.")
        layers, n_vis = have[0], have[1] if len(have) > 1 else None
        deep = "with --deep" if layers > 1 else "without --deep"
        raise ConfigError(
            f"{self._source} has visual prompts of shape {have} ({layers} layer(s) x {n_vis} tokens); this run "
            f"wants {expected}. Continue with --n-vis {n_vis} {deep} (and the file's backbone), or tune from scratch.")

    def load_into(self, model) -> None:
        """Copy the stored prompts into a freshly built PromptedCLIP (training.build_model does this). Only the
        prompts the model has are read: a stored visual prompt is left out of a text-only model (the collapse
        safeguard's CoOp run), but a prompt the model has and the file lacks, or of another shape, is refused."""
        config_like = {TEXT_CTX: model.text_ctx, VISUAL_PROMPT: model.visual_prompt}
        for key, parameter in config_like.items():
            if parameter is None:
                continue
            if key not in self.tensors:
                raise ConfigError(f"{self._source} has no '{key}' to start this run's {key} from; continue with "
                                  f"the stored file's method ({self.method or 'unknown'}) or tune from scratch.")
            stored = self.tensors[key]
            if tuple(stored.shape) != tuple(parameter.shape):
                raise ConfigError(f"{self._source}'s '{key}' has shape {tuple(stored.shape)}, but this run's model "
                                  f"needs {tuple(parameter.shape)}: use the stored run's --n-ctx / --n-vis / --deep "
                                  f"and backbone, or tune from scratch.")
            with torch.no_grad():
                parameter.copy_(stored.to(parameter))

    def record(self, classnames: list[str], config: TuningConfig, recipe_epochs: int) -> dict:
        """What the new prompt file and metrics say about the start (header and metrics key "warm_start")."""
        old = list(self.classnames)
        return {"from": self.name, "sha256": self.sha256, "method": self.method, "classnames": old,
                "new_classes": [name for name in classnames if old and name not in old],
                "dropped_classes": [name for name in old if name not in classnames],
                "epochs": config.epochs, "recipe_epochs": recipe_epochs, "warmup_epochs": config.warmup_epochs}


def _shapes(backbone, config: TuningConfig) -> dict[str, tuple[int, ...]]:
    """The shapes of the prompts PromptedCLIP builds for `config` on `backbone`."""
    shapes = {}
    if config.text_prompt:
        shapes[TEXT_CTX] = (config.n_ctx, backbone.text_width)
    if config.visual_prompt and backbone.supports_visual_prompt:
        layers = len(backbone.visual.transformer.resblocks) if config.deep_visual else 1
        shapes[VISUAL_PROMPT] = (layers, config.n_vis, backbone.vision_width)
    return shapes


def largest_class(train, n_classes: int) -> int:
    """Photos in the largest class: the shot count the recipe's epochs follow where none is given."""
    if not train:
        return 1
    return int(torch.bincount(torch.tensor([item.label for item in train]), minlength=n_classes).max())


def warm_schedule(config: TuningConfig, shots: int, dataset: str | None = None,
                  share: float = WARM_SHARE) -> tuple[TuningConfig, int]:
    """The config of a warm start and the recipe's epoch count it was cut from: `share` of those epochs (at least
    one; an explicit config.epochs is kept) and no warm-up. Applying it twice gives the same config."""
    recipe = epochs_for_shots(shots, dataset)
    if config.warmup_epochs == 0 and config.epochs is not None:
        return config, recipe
    epochs = config.epochs if config.epochs is not None else max(1, math.ceil(share * recipe))
    return replace(config, epochs=epochs, warmup_epochs=0), recipe


def new_class_emphasis(train, classnames: list[str], stored_classnames: list[str], seed: int,
                       share: float = NEW_CLASS_EMPHASIS) -> list:
    """The photos a warm start trains on a second time each epoch: `share` of each class the stored run did not
    have (chosen by the run's seed; at least one photo of a class that has any). None when no class is new or the
    stored file does not name its classes."""
    new = [index for index, name in enumerate(classnames) if stored_classnames and name not in stored_classnames]
    if not new or share <= 0:
        return []
    generator = torch.Generator().manual_seed(seed)
    extra = []
    for label in new:
        photos = [item for item in train if item.label == label]
        if photos:
            count = max(1, round(share * len(photos)))
            extra += [photos[i] for i in torch.randperm(len(photos), generator=generator)[:count].tolist()]
    return extra


@dataclass
class WarmPlan:
    """A checked warm start and the run's settings for it (`prepare`)."""

    start: WarmStart
    config: TuningConfig
    lr_choice: str | None
    record: dict
    emphasis: list = field(default_factory=list)  # photos trained a second time each epoch (new_class_emphasis)


def prepare(source, backbone, config: TuningConfig, classnames: list[str], train, shots: int | None = None,
            lr_choice: str | None = None) -> WarmPlan:
    """Check a warm start against the backbone and method (refusing with what to do) and give the run's config on
    the warm schedule; the quick and auto learning-rate choices, which try rates from scratch, become the scaled
    rate. `dapt tune --from` and tuning_run.tune_and_evaluate both call it (twice gives the same plan)."""
    start = WarmStart.of(source)
    start.check(backbone, config)
    config, recipe = warm_schedule(config, shots or largest_class(train, len(classnames)))
    lr_choice = "scaled" if lr_choice in ("quick", "auto") else lr_choice
    emphasis = new_class_emphasis(train, classnames, start.classnames, config.seed)
    record = {**start.record(classnames, config, recipe), "new_class_photos_repeated": len(emphasis)}
    return WarmPlan(start, config, lr_choice, record, emphasis)
