"""The tuning loop: prompts learn, the backbone stays frozen.

One loop serves every method; a method only decides which prompts exist and which loss terms
have weight. Runs single-process, or data-parallel when torch.distributed is initialised (each
rank takes its share of every global batch, so the result matches one process).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..data.records import LabeledImage, Skipped
from ..errors import Cancelled, DataError
from .backbone import Backbone
from .cpu_memory import on_the_cpu
from .loss_terms import CE, INTER, INTRA, LOSS, LOSS_TERMS
from .losses import inter_dispersion, intra_dispersion
from .methods import TuningConfig, learning_rate
from .metrics import text_spread
from .progress import Phase, Progress, ProgressCallback, eta_seconds
from .prompts import PromptedCLIP
from .tiled import TiledTrainingViews, any_tiles, choose_key_tiles, reselection_epochs
from .tiling import pool_log_probs
from .views import ImageViews, epoch_batches, loader, model_input, skipped_records
from .warm_start import WarmStart
from .zeroshot import zero_shot_text_features


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...




@dataclass
class TuningResult:
    prompted: PromptedCLIP
    config: TuningConfig
    epochs: int
    history: list[dict] = field(default_factory=list)  # per-epoch means of each loss term
    train_seconds: float = 0.0
    train_cpu_seconds: float = 0.0  # CPU time of this process (all threads) over the same span
    skipped: list[Skipped] = field(default_factory=list)
    # The training photos as decoded for tuning, kept only when asked (tune's keep_decoded): the
    # novelty pass after tuning makes their test views from them instead of decoding them again.
    decoded: ImageViews | None = field(default=None, repr=False, compare=False)
    # Why `watch` stopped the run early (tune's argument), or None for a run that went the whole way.
    stopped: str | None = None


def build_model(backbone: Backbone, classnames: list[str], config: TuningConfig,
                cache_dir: Path | None = None, init_from=None) -> PromptedCLIP:
    """The prompted CLIP of a method with its seeded initial prompts (`cache_dir`: where zero-shot
    class embeddings are kept, see dapt_core.zeroshot). `init_from` (a PromptFile, a dict of prompt
    tensors or a warm_start.WarmStart) replaces the initial prompts by stored ones (engine/warm_start.py)."""
    generator = torch.Generator().manual_seed(config.seed)
    fixed = None if config.text_prompt else zero_shot_text_features(backbone, classnames, config.templates, cache_dir)
    model = PromptedCLIP(backbone, classnames, text_prompt=config.text_prompt, visual_prompt=config.visual_prompt,
                         n_ctx=config.n_ctx, n_vis=config.n_vis, deep_visual=config.deep_visual,
                         fixed_text_features=fixed, generator=generator)
    if init_from is not None:
        WarmStart.of(init_from).load_into(model)
    return model


@on_the_cpu  # reuse freed activation memory between steps (cpu_memory.py)
def tune(backbone: Backbone, classnames: list[str], train: list[LabeledImage], config: TuningConfig, *,
         shots: int | None = None, dataset: str | None = None, on_progress: ProgressCallback | None = None,
         cancel: CancelFlag | None = None, num_workers: int = 0, cache_dir: Path | None = None,
         keep_decoded: bool = False, watch: Callable[[list[dict]], str | None] | None = None,
         good: int | None = None, deadline: float | None = None, init_from=None,
         replan: Callable[[int, float], int] | None = None) -> TuningResult:
    """Learn the prompts of `config.method` on `train`; returns the tuned model and its history.

    Args:
        shots: images per class, for the recipe's epoch count (default: the largest class's count).
        dataset: benchmark name, for its epoch rule (ImageNet: 50 epochs at every shot count).
        on_progress: called after every step (from this thread).
        cancel: checked before every step; when set, raises Cancelled and nothing is kept.
        num_workers: DataLoader worker processes (useful for large benchmark sets only).
        cache_dir: where zero-shot class embeddings are kept (default: dapt_core.zeroshot's).
        keep_decoded: return the decoded training photos in the result (`decoded`), for a pass
            over them that follows; they are otherwise freed with the run.
        watch: called with the history after every epoch; a non-empty string it returns stops the
            run there and is kept as the result's `stopped` (engine/safeguard.py watches for a
            collapse this way). It must answer the same on every rank.
        good: the index of the class that means a good part, for the photo's rule of a tiled run
            (engine/tiling.py); None for a task without one.
        deadline: a time.perf_counter() value (engine/budget.py): the run stops after the epoch whose
            successor would end past it, with `stopped` = OUT_OF_TIME.
        replan: called once, after the first REPLAN_SHARE of the epochs (and the warm-up), with the epochs
            done and the median seconds of those after the first (whose first steps run slower); it returns
            the run's new epoch count, over which the rest of the schedule is laid (a time budget's plan,
            corrected by the pace measured on the run itself).
        init_from: start from stored prompts (build_model); the schedule stays `config`'s
            (warm_start.warm_schedule gives a warm start's).
    """
    if len(classnames) < 2:
        raise DataError("A task needs at least two classes.")
    model = build_model(backbone, classnames, config, cache_dir, init_from)
    if not config.trains:
        return TuningResult(model, config, epochs=0)
    if not train:
        raise DataError("There are no training images; add some to every class.")
    per_class = torch.bincount(torch.tensor([item.label for item in train]), minlength=len(classnames))
    shots = shots if shots is not None else int(per_class.max())
    epochs = config.epochs_for(shots, dataset)

    rank, world = _rank_and_world()
    tiling = config.tiling
    tiled = any_tiles(train, tiling, backbone.preprocessing.size)  # photos the model sees whole get no tiles
    if tiled:
        views = TiledTrainingViews(train, backbone.preprocessing, tiling, seed=config.seed,
                                   augmentation=config.augmentation)
    else:
        views = ImageViews(train, backbone.preprocessing, train=True, seed=config.seed,
                           augmentation=config.augmentation)
    steps_per_epoch = len(epoch_batches(len(train), config.batch_size, config.seed, 0))
    total_steps = steps_per_epoch * epochs
    started, cpu_started = time.perf_counter(), time.process_time()
    views.preload(cancel=cancel)  # timed with the loop: the first epoch would otherwise decode them
    skipped: dict[int, str] = {}
    if tiled:
        zero_shot = zero_shot_text_features(backbone, classnames, config.templates, cache_dir)
        choose_key_tiles(model, views, good, frozen=True, zero_shot_text=zero_shot, cancel=cancel)
    reselect = set(reselection_epochs(epochs)) if tiled else set()

    prototypes = None
    if config.visual_prompt and config.beta_v > 0:
        prototypes = compute_prototypes(model, views, len(classnames), config, skipped, cancel, num_workers)

    trained = model
    if world > 1:
        device_ids = [backbone.device.index] if backbone.device.type == "cuda" else None
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    # The time left is counted at the steps' own pace: decoding the photos and the prototypes before the
    # first step took seconds that dividing by the first few steps would have charged to every step left.
    loop_started = time.perf_counter()
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    history: list[dict] = []
    step = 0
    stopped = None
    replan_after = max(config.warmup_epochs + 2, math.ceil(REPLAN_SHARE * epochs)) if world == 1 else 0
    epoch_seconds: list[float] = []
    epoch = -1
    while epoch + 1 < epochs:
        epoch += 1
        epoch_started = time.perf_counter()
        if epoch in reselect:
            choose_key_tiles(model, views, good, frozen=False, cancel=cancel)
        lr = learning_rate(epoch, config.lr, epochs, config.warmup_epochs, config.warmup_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        views.set_epoch(epoch)
        global_batches = epoch_batches(len(train), config.batch_size, config.seed, epoch)
        if world > 1:
            # A rank with no image in a batch would skip the step while the others wait for its
            # gradients; batches that cannot give every rank an image are left out.
            global_batches = [batch for batch in global_batches if len(batch) >= world]
        local_batches = [batch[rank::world] for batch in global_batches]
        running = RunningTerms(backbone.device)
        for batch, global_batch in zip(loader(views, local_batches, num_workers), global_batches):
            if cancel is not None and cancel.is_set():
                raise Cancelled("Tuning was cancelled; nothing was saved.")
            skipped.update(dict(batch.skipped))
            if len(batch.labels) == 0:  # every image of the batch failed to load
                continue
            terms = _step(trained, model, batch, prototypes, config, optimizer,
                          share=len(batch.labels) * world / max(1, len(global_batch)), good=good)
            step += 1
            # Under DDP each rank holds its share of the batch's means; weighted by that share, the
            # sums over ranks (reduced after the epoch) are the single-process numbers.
            running.add(terms, weight=1.0 if world == 1 else len(batch.labels) / max(1, len(global_batch)),
                        images=len(batch.labels))
            if on_progress is not None and rank == 0:
                latest = running.latest(force=step == total_steps)
                elapsed = time.perf_counter() - started
                on_progress(Progress(
                    Phase.TRAIN, epoch + 1, epochs, step, total_steps, latest[LOSS], latest[CE], latest[INTRA],
                    latest[INTER], latest["train_accuracy"], lr, elapsed,
                    eta_seconds(time.perf_counter() - loop_started, step, total_steps)))
        sums, correct, seen = running.totals()
        if world > 1:
            correct, seen = _reduce_epoch(sums, correct, seen, backbone.device)
        n = max(1, len(local_batches))
        history.append({"epoch": epoch + 1, "lr": lr, "train_accuracy": correct / max(1, seen),
                        **{k: sums[k] / n for k in TERMS}, "text_spread": epoch_text_spread(model)})
        stopped = watch(history) if watch is not None else None
        now = time.perf_counter()
        epoch_seconds.append(now - epoch_started)
        if replan is not None and epoch + 1 == replan_after and epoch + 1 < epochs and not stopped:
            pace = statistics.median(epoch_seconds[1:] or epoch_seconds)
            epochs = max(epoch + 1, int(replan(epoch + 1, pace)))
            total_steps = steps_per_epoch * epochs
        if not stopped and deadline is not None and epoch + 1 < epochs and now + (now - epoch_started) > deadline:
            stopped = OUT_OF_TIME
        if stopped:
            break
    return TuningResult(model, config, epochs, history, time.perf_counter() - started,
                        time.process_time() - cpu_started, skipped_records(views, sorted(skipped.items())),
                        decoded=views if keep_decoded else None, stopped=stopped or None)


# TuningResult.stopped of a run that stopped at its time budget's deadline (tune's `deadline`).
OUT_OF_TIME = "out_of_time"
# tune's `replan` is called after this share of the planned epochs.
REPLAN_SHARE = 0.2
TERMS = LOSS_TERMS
# Progress reads the loss values back from the device at most this often: every read waits for
# all queued GPU work, so reading after every step would leave the GPU idle between steps.
READBACK_SECONDS = 0.25


def step_losses(trained, model: PromptedCLIP, images: torch.Tensor, labels: torch.Tensor, prototypes,
                config: TuningConfig, share: float = 1.0, good: int | None = None) -> dict[str, torch.Tensor]:
    """The loss terms of one batch as tensors on the device: "objective" carries the gradient
    (this rank's share under DDP), "loss" is CE + beta_v * intra + beta_t * inter of the batch.
    A tiled run's batch holds several views per photo (the whole view, then the key tile): the
    cross-entropy is on their pooled score (tiling.py) and the intra term on the key tile."""
    device = model.backbone.device
    with model.backbone.autocast():
        logits, image, text = trained(images)
    per_photo = len(images) // max(1, len(labels))
    good_views = None
    if per_photo > 1:
        views = F.log_softmax(logits.float(), dim=-1).view(len(labels), per_photo, -1)
        logits = pool_log_probs(views, good)
        image = image.view(len(labels), per_photo, -1)[:, 1]  # the first key tile
        if good is not None:  # every view of a good photo is good
            is_good = labels == good
            good_views = -views[is_good][..., good].mean() if bool(is_good.any()) else None
    ce = F.cross_entropy(logits.float(), labels)
    if good_views is not None:
        ce = ce + good_views * float(is_good.float().mean())
    per_sample = ce
    intra = inter = torch.zeros((), device=device)
    if prototypes is not None:
        intra = intra_dispersion(image, prototypes, labels)
        per_sample = per_sample + config.beta_v * intra
    if config.text_prompt and config.beta_t > 0:
        inter = inter_dispersion(text, t=config.inter_temperature)
    # `share` weights this rank's sample-averaged terms so that DDP's gradient average equals
    # the mean over the whole global batch; inter-dispersion does not depend on the batch.
    objective = per_sample * share + config.beta_t * inter
    ce, intra, inter = ce.detach(), intra.detach(), inter.detach()
    return {"objective": objective, LOSS: ce + config.beta_v * intra + config.beta_t * inter,
            CE: ce, INTRA: intra, INTER: inter, "correct": (logits.detach().argmax(dim=1) == labels).sum()}


def _step(trained, model: PromptedCLIP, batch, prototypes, config: TuningConfig, optimizer, share: float,
          good: int | None = None) -> dict:
    """One optimisation step; the returned terms stay on the device (no host sync)."""
    device = model.backbone.device
    images = model_input(batch, model.backbone.preprocessing, device)
    labels = batch.labels.to(device, non_blocking=True)
    terms = step_losses(trained, model, images, labels, prototypes, config, share, good)
    objective = terms.pop("objective")
    optimizer.zero_grad(set_to_none=True)
    if objective.requires_grad:
        objective.backward()
        optimizer.step()
    return terms


class RunningTerms:
    """An epoch's loss terms and correct predictions, summed on the device; read back to the host
    only for progress (at most every READBACK_SECONDS) and once at the end of the epoch."""

    def __init__(self, device: torch.device):
        self._sums = torch.zeros(len(TERMS) + 1, device=device)  # + correct; float32: MPS has no float64
        self._last = self._sums.clone()
        self._images = 0
        self._read_at = -float("inf")
        self._latest = {key: float("nan") for key in (*TERMS, "train_accuracy")}

    def add(self, terms: dict[str, torch.Tensor], weight: float, images: int) -> None:
        values = torch.stack([terms[key].float() for key in TERMS])
        self._last = values
        self._sums[:-1] += values * weight
        self._sums[-1] += terms["correct"]
        self._images += images

    def latest(self, force: bool = False) -> dict[str, float]:
        """The last step's terms and the epoch's training accuracy so far, as last read back."""
        now = time.perf_counter()
        if force or now - self._read_at >= READBACK_SECONDS:
            values = torch.cat([self._last, self._sums[-1:]]).tolist()  # one device-to-host copy
            self._latest = {**dict(zip(TERMS, values)), "train_accuracy": values[-1] / max(1, self._images)}
            self._read_at = now
        return self._latest

    def totals(self) -> tuple[dict[str, float], int, int]:
        """Summed terms, correct predictions and images of the epoch (one device-to-host copy)."""
        values = self._sums.tolist()
        return dict(zip(TERMS, values)), int(values[-1]), self._images


@torch.no_grad()
def compute_prototypes(model: PromptedCLIP, views: ImageViews, n_classes: int, config: TuningConfig,
                       skipped: dict, cancel: CancelFlag | None = None, num_workers: int = 0) -> torch.Tensor:
    """Per-class mean of the frozen model's normalised features (no prompts), one augmented view
    per training image, computed once before tuning and not re-normalised (as in the recipe)."""
    device = model.backbone.device
    views.set_epoch(-1)  # a view of its own, not one of the training epochs'
    batches = epoch_batches(len(views), config.eval_batch_size, config.seed, -1, shuffle=False)
    sums = torch.zeros(n_classes, model.backbone.embed_dim, device=device)
    counts = torch.zeros(n_classes, device=device)
    for batch in loader(views, batches, num_workers):
        if cancel is not None and cancel.is_set():
            raise Cancelled("Tuning was cancelled; nothing was saved.")
        skipped.update(dict(batch.skipped))
        if len(batch.labels) == 0:
            continue
        with model.backbone.autocast():
            features = model.image_features(model_input(batch, model.backbone.preprocessing, device),
                                            prompted=False)
        labels = batch.labels.to(device)
        per_photo = len(features) // len(labels)
        if per_photo > 1:  # a tiled run: the first key tile carries the photo's label
            features = features.view(len(labels), per_photo, -1)[:, 1]
        sums.index_add_(0, labels, features.float())
        counts.index_add_(0, labels, torch.ones_like(labels, dtype=torch.float))
    return sums / counts.clamp_min(1)[:, None]


@torch.no_grad()
def epoch_text_spread(model: PromptedCLIP) -> float | None:
    """The class text embeddings' spread (metrics.text_spread) after an epoch, for methods that learn
    them (None otherwise). It is how a collapse shows (run_health.py): cross-entropy on features that
    do not tell the classes apart can pull every class onto one point. One text forward per epoch,
    less than a training step costs."""
    if model.text_ctx is None:
        return None
    with model.backbone.autocast():
        return text_spread(model.text_features())


def _reduce_epoch(sums: dict[str, float], correct: int, seen: int, device) -> tuple[int, int]:
    """Sum an epoch's loss terms (in place), correct predictions and images over the ranks."""
    packed = torch.tensor([sums[k] for k in TERMS] + [correct, seen], dtype=torch.float64, device=device)
    dist.all_reduce(packed)
    for key, value in zip(TERMS, packed.tolist()):
        sums[key] = value
    return int(packed[-2]), int(packed[-1])


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
