"""The collapse safeguard of `dapt tune` and the app: a run whose class text embeddings fall onto one
point is not kept as if it were fine.

Why (measured with benchmarks/hard_tasks.py; docs/recipe.md has the table): where the frozen image
features barely tell the classes apart, cross-entropy's optimum is a uniform guess, and the quickest
way there is to give every class the same embedding. The randomly initialised text context starts
as a confidently wrong classifier (cross-entropy 2.3-2.9 on 3 classes, against ln 3 = 1.10), the
first epochs at the full rate cancel that, and the class text spread falls from about 0.3 to 1e-5
within a few epochs. Inter-dispersion cannot bring it back: its gradient, -2 t d exp(-t d^2) in the
distance d, vanishes with d (and a weight of 1 instead of 0.01 made the swing worse). Cross-entropy
pulled the classes apart again over 50-100 epochs on some seeds and not on others, for CoOp and DAPT
alike. Lowering the rate, or choosing among runs on a held-out quarter of 16 shots (4 photos per
class), helped on some seeds and hurt on others. Where DAPT collapsed early, CoOp (frozen image
features, so the photos cannot be made to look alike; 0.4 of the time) did better on 4 of 6 runs
(0.338 against 0.448 and 0.353 against 0.363 on the other two) and, where it did not collapse itself,
never ended at chance.

So, using only the training run itself:
1. A run with a visual prompt (DAPT) is watched for its first WATCH_SHARE of the epochs (training.tune
   records the spread every epoch). When the spread falls below COLLAPSE_SHARE of the zero-shot
   classifier's, it stops and CoOp runs instead, same rate and length (about 0.4 of a DAPT run).
2. A run that ends with its spread below that line (CoOp's included) is replaced by the zero-shot
   classifier: class embeddings on one point answer by chance; zero-shot is at least the untuned model.
A run that never collapses is the run it always was, step for step, and costs nothing more; a DAPT
run that collapses costs at most 0.1 of a run before it stops plus the CoOp run, about half of what
the DAPT run would have cost.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

from ..data.records import LabeledImage
from .backbone import Backbone
from .methods import METHOD_TITLES, TuningConfig
from .metrics import text_spread
from .run_health import COLLAPSE_SPREAD_SHARE
from .training import TuningResult, tune

# Share of the epochs watched: the collapse comes in the first epochs after the warm-up.
WATCH_SHARE = 0.1
# A spread below this share of the zero-shot classifier's counts as collapsed: the line the health
# check reports at too (run_health.COLLAPSE_SPREAD_SHARE has the measurements behind it).
COLLAPSE_SHARE = COLLAPSE_SPREAD_SHARE


def applies(config: TuningConfig) -> bool:
    """Whether the safeguard watches runs of `config` by default: methods that learn class text
    embeddings, under the inspection preset (the product's defaults; `dapt bench` keeps the recipe)."""
    return config.text_prompt and config.preset == "inspection"


class CollapseWatch:
    """tune()'s `watch`: stops a run whose class text spread falls below `threshold` within its first
    `watch_epochs` epochs (the warm-up epochs, at a rate too small to move anything, are not counted)."""

    def __init__(self, threshold: float, watch_epochs: int, warmup_epochs: int = 0):
        self.threshold = threshold
        self.watch_epochs = watch_epochs
        # Collapse is what the full rate does; a spread that starts small is no reason to switch.
        self.warmup_epochs = warmup_epochs
        self.spread: float | None = None
        self.epoch: int | None = None

    def __call__(self, history: list[dict]) -> str | None:
        row = history[-1]
        spread = row.get("text_spread")
        if spread is None or not self.warmup_epochs < row["epoch"] <= self.watch_epochs:
            return None
        if spread < self.threshold:
            self.spread, self.epoch = spread, row["epoch"]
            return "text_embeddings_collapsed"
        return None


def tune_with_safeguard(backbone: Backbone, classnames: list[str], train: list[LabeledImage], config: TuningConfig,
                        *, zero_shot_text, shots: int | None = None, dataset: str | None = None,
                        **tune_options) -> tuple[TuningResult, dict]:
    """training.tune with the collapse safeguard (see the module's docstring).

    Args:
        zero_shot_text: the zero-shot class embeddings (C, D), whose spread is the reference.
        tune_options: passed to tune (on_progress, cancel, num_workers, cache_dir, keep_decoded).
    Returns the run that was kept and what the safeguard did, JSON-ready: {"action": "none",
    "switched_method" or "zero_shot", "reason", "requested_method", "method", "requested_lr", "lr",
    "runs": [{"method", "lr", "epochs_run", "text_spread", "outcome"}], "reference_spread", "threshold",
    "watched_epochs", "seconds_before_kept_run"}; each run's outcome is "collapsed_early" (stopped by
    the watch), "collapsed" (ended collapsed, not kept) or "kept".
    """
    started = time.perf_counter()
    reference = text_spread(zero_shot_text)
    threshold = COLLAPSE_SHARE * reference
    epochs = config.epochs_for(shots if shots is not None else 1, dataset)
    watch_epochs = config.warmup_epochs + max(2, math.ceil(WATCH_SHARE * epochs))
    on_progress = tune_options.pop("on_progress", None)
    record = {"action": "none", "reason": None, "requested_method": config.method, "method": config.method,
              "requested_lr": config.lr, "lr": config.lr, "runs": [], "reference_spread": reference,
              "threshold": threshold, "watched_epochs": watch_epochs, "seconds_before_kept_run": 0.0}
    offset = {"steps": 0, "last": 0}  # steps of the runs not kept, so that progress never goes back

    def relay(progress):
        offset["last"] = progress.step
        if on_progress is not None:
            on_progress(replace(progress, step=progress.step + offset["steps"],
                                total_steps=progress.total_steps + offset["steps"]))

    def run(attempt: TuningConfig, watch: CollapseWatch | None) -> TuningResult:
        offset["steps"] += offset["last"]
        offset["last"] = 0
        return tune(backbone, classnames, train, attempt, shots=shots, dataset=dataset, watch=watch,
                    on_progress=relay, **tune_options)

    # Only a run with a visual prompt is watched: it has a text-only run to fall back to.
    watch = CollapseWatch(threshold, watch_epochs, config.warmup_epochs) if config.visual_prompt else None
    result = run(config, watch)
    if watch is not None and watch.epoch is not None:  # stopped by the watch (not by a time budget's deadline)
        record["runs"].append({"method": config.method, "lr": config.lr, "epochs_run": watch.epoch,
                               "text_spread": watch.spread, "outcome": "collapsed_early"})
        record.update(action="switched_method", reason="text_embeddings_collapsed_early")
        result = run(replace(config, method="coop", beta_v=0.0, beta_t=0.0), None)
    spread = _last_spread(result)
    if spread is not None and spread < threshold:
        record["runs"].append({"method": result.config.method, "lr": result.config.lr,
                               "epochs_run": len(result.history), "text_spread": spread, "outcome": "collapsed"})
        record.update(action="zero_shot", reason="text_embeddings_collapsed")
        result = run(replace(config, method="zeroshot", beta_v=0.0, beta_t=0.0), None)
        spread = None
    if record["action"] != "none":
        record["seconds_before_kept_run"] = time.perf_counter() - started - result.train_seconds
    kept = result.config
    record.update(method=kept.method, lr=kept.lr if kept.trains else None)
    record["runs"].append({"method": kept.method, "lr": record["lr"], "epochs_run": len(result.history),
                           "text_spread": spread, "outcome": "kept"})
    return result, record


def _last_spread(result: TuningResult) -> float | None:
    return result.history[-1].get("text_spread") if result.history else None


def describe(record: dict | None) -> list[str]:
    """What the safeguard did, in English, for the command line (empty where it did nothing)."""
    if not record or record.get("action") == "none":
        return []
    lines = []
    for row in record["runs"]:
        rate = "" if row["lr"] is None else f" at lr {row['lr']:.3g}"
        if row["outcome"] == "collapsed_early":
            lines.append(f"safeguard: {row['method']}{rate} collapsed: the class text spread fell to "
                         f"{row['text_spread']:.2g} by epoch {row['epochs_run']} (zero-shot "
                         f"{record['reference_spread']:.3f}); trying {_title('coop')} (text prompt only)")
        elif row["outcome"] == "collapsed":
            lines.append(f"safeguard: {row['method']}{rate} ended collapsed (class text spread "
                         f"{row['text_spread']:.2g}, zero-shot {record['reference_spread']:.3f}); keeping the "
                         f"zero-shot classifier")
        else:
            lines.append(f"safeguard: kept {row['method']}{rate}")
    return lines


def _title(method: str) -> str:
    return METHOD_TITLES.get(method, method)
