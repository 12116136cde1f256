"""How long a run will take, before it starts: a few real steps measured on this machine, then counted.

A quality engineer books a meeting around a run, so the estimate comes from this machine, not a table:
a handful of real training steps (the method's prompts, losses and optimiser on a batch of the run's size,
tiles included) and a batch of evaluation forwards are timed, and the run's own counts multiply them:
steps per epoch x epochs (and the learning-rate choice's short runs), the prototypes, the key-tile
passes of a tiled run, the evaluation of the test photos before and after tuning, and decoding the
photos. Timings are kept per backbone, device, method, batch and class count in the cache folder
(`step-times.json`), so the second estimate on a machine takes no time.

What it leaves out: the collapse safeguard's replacement runs (only where a run collapses; they add at
most a tenth of a run each) and the first load of the backbone.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .. import atomic
from ..data.images import image_size, load_image
from ..data.records import Split
from ..errors import ImageRejected
from .backbone import Backbone
from .cpu_memory import on_the_cpu
from .methods import LR_AUTO, LR_QUICK, TuningConfig
from .tiled import KEY_TILES, reselection_epochs
from .views import epoch_batches

TIMINGS_FILE = "step-times.json"
# Steps timed after the warm-up: at least MEASURED_STEPS, more while they add up to under MEASURE_SECONDS (a
# small model's first steps run slower than its later ones, so a few short ones would overstate the run).
MEASURED_STEPS, MAX_MEASURED_STEPS, MEASURE_SECONDS = 3, 30, 1.5
WARMUP_SECONDS = 0.5  # warm-up steps: at least one, more while they add up to under this
DECODE_SAMPLE = 4  # photos decoded to time decoding
QUICK_RUNS, QUICK_EPOCHS, QUICK_FIT = 3, 0.2, 0.75  # selection.quick_learning_rate's short runs
AUTO_RUNS, AUTO_FIT = 10, 0.5  # selection.cross_validated_learning_rate: 5 rates x 2 folds


@dataclass
class Estimate:
    """Seconds by part of a run, and the counts behind them (JSON-ready via to_dict)."""

    seconds: dict[str, float]
    counts: dict[str, int]
    step_seconds: float
    view_seconds: float  # one evaluation forward of one view, in a batch
    measured_now: bool  # False: the timings came from the cache
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return float(sum(self.seconds.values()))

    @property
    def training(self) -> float:
        """The part the training loop takes (what `train_seconds` of a run's metrics measures)."""
        return float(sum(v for k, v in self.seconds.items() if k in ("decode", "prototypes", "key_tiles", "train")))

    def to_dict(self) -> dict:
        return {**asdict(self), "total": self.total, "training": self.training}

    def describe(self) -> str:
        parts = ", ".join(f"{name} {_clock(seconds)}" for name, seconds in self.seconds.items() if seconds >= 0.5)
        return f"about {_clock(self.total)} ({parts})"


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def estimate_run(backbone: Backbone, split: Split, config: TuningConfig, *, shots: int | None = None,
                 lr_choice: str | None = None, good: int | None = None, cache_dir: Path | None = None,
                 again: bool = False, measure: bool = True) -> Estimate | None:
    """The expected seconds of `run_experiment(backbone, split, config)` on this machine (`lr_choice`:
    "quick" or "auto" when the learning rate is chosen first; "scaled" and a given rate cost nothing).
    `measure=False`: only from timings measured before (None when there are none yet)."""
    from .cache_folder import default_cache_dir
    from .tiled import any_tiles

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    per_class = torch.bincount(torch.tensor([item.label for item in split.train], dtype=torch.long),
                               minlength=len(split.classnames)) if split.train else torch.zeros(1)
    shots = shots if shots is not None else int(per_class.max())
    epochs = config.epochs_for(shots) if config.trains else 0
    n_train, n_test = len(split.train), len(split.test)
    size = backbone.preprocessing.size
    tiling = config.tiling
    train_tiles = _mean_tiles(split.train, tiling, size) if any_tiles(split.train, tiling, size) else None
    test_tiles = _mean_tiles(split.test, tiling, size) if any_tiles(split.test, tiling, size) else None
    views = 1 + KEY_TILES if train_tiles is not None else 1
    batch = min(config.batch_size, max(1, n_train))
    timing, measured = _timing(backbone, split.classnames, config, batch, views, good, cache_dir, again, measure)
    if timing is None:
        return None
    steps_per_epoch = len(epoch_batches(n_train, config.batch_size, config.seed, 0)) if n_train else 0
    steps = steps_per_epoch * epochs
    seconds = {"decode": _decode_seconds(split) if config.trains else 0.0}
    counts = {"epochs": epochs, "steps": steps, "train_photos": n_train, "test_photos": n_test}
    if lr_choice in (LR_QUICK, LR_AUTO) and config.trains:
        runs, fit, share = ((QUICK_RUNS, QUICK_FIT, QUICK_EPOCHS) if lr_choice == LR_QUICK
                            else (AUTO_RUNS, AUTO_FIT, 1.0))
        fit_steps = len(epoch_batches(max(1, round(n_train * fit)), config.batch_size, config.seed, 0))
        select_steps = runs * max(config.warmup_epochs + 1, round(epochs * share)) * fit_steps
        seconds["choose_lr"] = select_steps * timing["step"]
        counts["choose_lr_steps"] = select_steps
    per_view = timing["view"]
    if config.trains and config.visual_prompt and config.beta_v > 0:
        seconds["prototypes"] = n_train * views * per_view
    if train_tiles is not None:
        choices = 1 + len(reselection_epochs(epochs))  # before the first epoch, then again during the run
        seconds["key_tiles"] = choices * n_train * train_tiles * per_view
        counts["key_tile_choices"] = choices
    seconds["train"] = steps * timing["step"]
    test_views = 1 + (test_tiles or 0)
    if test_tiles is not None:  # both sides score every view of every photo
        seconds["evaluate"] = 2 * n_test * test_views * per_view
    else:  # the frozen side reads what an earlier evaluation of these photos kept (feature_cache.py)
        cached = _cached_frozen_features(backbone, split, cache_dir)
        seconds["evaluate"] = ((n_test - cached) + (n_test if config.visual_prompt else 0)) * per_view
        counts["frozen_features_cached"] = cached
    seconds["calibrate"] = n_train * per_view  # the unknown check's class means (whole photos)
    counts["views_per_test_photo"] = test_views
    notes = [] if measured else ["step times from this machine's earlier measurement"]
    return Estimate({k: float(v) for k, v in seconds.items()}, counts, timing["step"], per_view, measured, notes)


# The Tune page re-estimates on every rerun: the test photos' hashes are remembered by path, size and
# modification time, so a rerun reads no photo again (a changed file has a new size or time).
_FILE_SHAS: dict[tuple[str, int, int], str] = {}
_FILE_SHAS_KEPT = 100_000


def _sha256_of_file(path: Path) -> str:
    from ..data.images import sha256_of

    stat = Path(path).stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    sha = _FILE_SHAS.get(key)
    if sha is None:
        if len(_FILE_SHAS) >= _FILE_SHAS_KEPT:
            _FILE_SHAS.clear()
        sha = _FILE_SHAS[key] = sha256_of(path)
    return sha


def _cached_frozen_features(backbone: Backbone, split: Split, cache_dir: Path) -> int:
    """How many test photos have their frozen features kept from an earlier evaluation."""
    from .feature_cache import FrozenFeatureCache

    shas = []
    for item in split.test:
        try:
            shas.append(_sha256_of_file(item.path))
        except OSError:
            continue
    return len(FrozenFeatureCache(cache_dir, backbone).cached(shas)) if shas else 0


def _mean_tiles(items, tiling, size: int) -> float:
    # A sample is enough: the photos of one project have one or a few sizes.
    counts = [len(tiling.boxes(*found, size)) for found in (image_size(item.path) for item in items[:64]) if found]
    return sum(counts) / len(counts) if counts else 0.0


def _decode_seconds(split: Split) -> float:
    """Decoding the training photos once (tuning keeps them) and the test photos once per pass."""
    sample = split.train[:DECODE_SAMPLE]
    if not sample:
        return 0.0
    started = time.perf_counter()
    decoded = 0
    for item in sample:
        try:
            load_image(item.path)
            decoded += 1
        except (ImageRejected, OSError):  # an unreadable photo is skipped by the run too
            continue
    per_photo = (time.perf_counter() - started) / max(1, decoded)
    return per_photo * (len(split.train) + len(split.test))


def _key(backbone: Backbone, config: TuningConfig, batch: int, views: int, n_classes: int) -> str:
    return "|".join(map(str, (backbone.spec, backbone.weights_id, backbone.device, backbone.precision, config.method,
                              config.n_ctx, config.n_vis, config.deep_visual, batch, views, n_classes,
                              torch.get_num_threads())))


def _timing(backbone: Backbone, classnames: list[str], config: TuningConfig, batch: int, views: int,
            good: int | None, cache_dir: Path, again: bool, measure: bool = True) -> tuple[dict | None, bool]:
    path = cache_dir / TIMINGS_FILE
    key = _key(backbone, config, batch, views, len(classnames))
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        kept = {}
    if not again and isinstance(kept.get(key), dict):
        return kept[key], False
    if not measure:
        return None, False
    timing = measure_steps(backbone, classnames, config, batch=batch, views=views, good=good, cache_dir=cache_dir)
    kept[key] = timing
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic.write_json(path, kept)
    except OSError:
        pass  # a read-only cache only costs the next estimate its measurement
    return timing, True


@on_the_cpu
def measure_steps(backbone: Backbone, classnames: list[str], config: TuningConfig, *, batch: int, views: int = 1,
                  good: int | None = None, cache_dir: Path | None = None) -> dict:
    """Seconds of one training step on `batch` photos of `views` views each, and of one evaluation view
    (the median of MEASURED_STEPS after a warm-up), with the method's real model, losses and optimiser."""
    from .training import build_model, step_losses

    model = build_model(backbone, classnames, config, cache_dir)
    device = backbone.device
    generator = torch.Generator().manual_seed(0)
    size = backbone.preprocessing.size
    images = torch.randn(batch * views, 3, size, size, generator=generator).to(device)
    labels = torch.randint(len(classnames), (batch,), generator=generator).to(device)
    prototypes = None
    if config.visual_prompt and config.beta_v > 0:
        prototypes = torch.nn.functional.normalize(torch.randn(len(classnames), backbone.embed_dim,
                                                               generator=generator), dim=-1).to(device)
    step = math.nan
    if config.trains:
        optimizer = torch.optim.SGD(model.trainable_parameters(), lr=config.lr, momentum=config.momentum)
        def one_step() -> float:
            started = time.perf_counter()
            terms = step_losses(model, model, images, labels, prototypes, config, good=good)
            optimizer.zero_grad(set_to_none=True)
            terms["objective"].backward()
            optimizer.step()
            _sync(device)
            return time.perf_counter() - started

        warmup = one_step()
        while warmup < WARMUP_SECONDS:
            warmup += one_step()
        times = [one_step()]
        while len(times) < MEASURED_STEPS or (sum(times) < MEASURE_SECONDS and len(times) < MAX_MEASURED_STEPS):
            times.append(one_step())
        step = sorted(times)[len(times) // 2]
    chunk = images[:min(len(images), 32)]
    view_times = []
    with torch.no_grad():
        for _ in range(MEASURED_STEPS + 1):
            started = time.perf_counter()
            with backbone.autocast():
                model.image_features(chunk)
            _sync(device)
            view_times.append((time.perf_counter() - started) / len(chunk))
    return {"step": step if config.trains else 0.0, "view": sorted(view_times[1:])[len(view_times[1:]) // 2],
            "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
