"""A tuning run as a user starts one, from `dapt tune` or the app's Tune page: fit the schedule to a time
budget where one is set, choose the learning rate where asked, then run the experiment (tune, evaluate,
calibrate). Both front ends call `tune_and_evaluate`, so the same settings give the same run; what they
do around it (printing, saving to a file or to a project) stays theirs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..data.records import Split
from ..deploy.pass_fail import DEFAULT_ESCAPE_RATE
from .backbone import Backbone
from .budget import BudgetPlan, plan_budget
from .estimate import Estimate, estimate_run
from .experiment import ExperimentResult, run_experiment
from .methods import TuningConfig
from .progress import Phase, Progress
from .selection import Selection, choose_learning_rate
from .training import OUT_OF_TIME, CancelFlag
from .warm_start import prepare as prepare_warm_start


@dataclass
class TuningRun:
    result: ExperimentResult
    selection: Selection | None = None  # where the learning rate was chosen
    budget: BudgetPlan | None = None
    estimate: Estimate | None = None
    seconds: float = 0.0  # from the start of tune_and_evaluate to its end
    warm_start: dict | None = None  # where a warm start's prompts came from (engine/warm_start.py)

    def prompt_extra(self) -> dict:
        """What the prompt file records about how the run was set up, beyond its config."""
        extra = {}
        if self.selection is not None:
            extra["lr_selection"] = self.selection.to_dict()
        if self.budget is not None:
            extra["budget"] = self.budget_record()
        if self.warm_start is not None:
            extra["warm_start"] = self.warm_start
        return extra

    def budget_record(self) -> dict | None:
        if self.budget is None:
            return None
        return {**self.budget.to_dict(), "actual_seconds": self.seconds,
                "epochs_after_replanning": self.result.tuning.epochs, "epochs_run": len(self.result.tuning.history),
                "stopped_at_deadline": self.result.tuning.stopped == OUT_OF_TIME}

    def metrics_extra(self) -> dict:
        """What the run's metrics hold beyond the experiment's: the choices above and the time estimate
        against the actual time."""
        extra = self.prompt_extra()
        if self.estimate is not None:
            extra["time_estimate"] = {**self.estimate.to_dict(), "actual_seconds": self.seconds}
        return extra

    def metrics(self) -> dict:
        return {**self.result.metrics(), **self.metrics_extra()}


def tune_and_evaluate(backbone: Backbone, split: Split, config: TuningConfig, *, shots: int | None = None,
                      lr_choice: str | None = None, lr_grid: tuple[float, ...] | None = None,
                      good_class: str | None = None, escape_rate: float = DEFAULT_ESCAPE_RATE,
                      budget_minutes: float | None = None, estimate: Estimate | None = None,
                      on_progress: Callable[[Progress], None] | None = None,
                      on_phase: Callable[[str], None] | None = None,
                      on_selection: Callable[[Selection], None] | None = None,
                      cancel: CancelFlag | None = None, cache_dir: Path | None = None,
                      init_from=None) -> TuningRun:
    """Tune `config` on `split` and evaluate it.

    lr_choice: "scaled", "quick" or "auto" to choose the learning rate first (engine/selection.py), None to
        keep config.lr. budget_minutes: end the whole run within this many minutes (engine/budget.py);
        `estimate` (estimate_run's for this run) saves measuring it again. on_phase: told the phase
        (progress.Phase) as the run enters it; on_selection: given the learning-rate choice when it is made.
    init_from: a prompt file (path or loaded), a dict of prompt tensors or a warm_start.WarmStart to continue
        from, with classes or photos added: checked against the backbone and method first, then tuned on the
        warm start's shorter schedule (warm_start.warm_schedule) at the scaled rate where a rate is chosen (the
        quick and auto choices try rates from scratch).
    """
    started = time.perf_counter()
    good = split.classnames.index(good_class) if good_class else None
    warm, emphasis = None, None
    if init_from is not None:
        warm_plan = prepare_warm_start(init_from, backbone, config, split.classnames, split.train, shots, lr_choice)
        config, lr_choice, warm, init_from = warm_plan.config, warm_plan.lr_choice, warm_plan.record, warm_plan.start
        emphasis = warm_plan.emphasis
    plan = None
    if budget_minutes is not None and config.trains:
        if estimate is None:
            estimate = estimate_run(backbone, split, config, shots=shots, lr_choice=lr_choice, good=good,
                                    cache_dir=cache_dir)
        plan = plan_budget(estimate, budget_minutes, warmup_epochs=config.warmup_epochs)
        if plan.shortened:
            config = replace(config, epochs=plan.epochs)  # the schedule is laid over the shortened run
    selection = None
    if lr_choice and config.trains:
        _enter(on_phase, Phase.SELECT)
        selection = choose_learning_rate(lr_choice, backbone, split.classnames, split.train, config,
                                         grid=lr_grid, shots=shots, on_progress=on_progress, cancel=cancel,
                                         good=good)
        config = replace(config, lr=selection.lr)
        if on_selection is not None:
            on_selection(selection)
    _enter(on_phase, Phase.PROTOTYPES if config.visual_prompt and config.beta_v > 0 else Phase.TRAIN)
    result = run_experiment(backbone, split, config, shots=shots, on_progress=on_progress, cancel=cancel,
                            cache_dir=cache_dir, good_class=good_class, escape_rate=escape_rate,
                            deadline=plan.training_deadline(started) if plan is not None else None,
                            replan=plan.replanner(started) if plan is not None and plan.shortened else None,
                            init_from=init_from, train_extra=emphasis)
    return TuningRun(result, selection, plan, estimate, time.perf_counter() - started, warm)


def _enter(on_phase: Callable[[str], None] | None, phase: str) -> None:
    if on_phase is not None:
        on_phase(phase)
