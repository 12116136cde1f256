"""The app's jobs: a tuning run, the evaluation of an imported prompt file and the check before Start,
each a request of plain values that the process-wide queue (job_queue.py) runs in a worker thread.

    job = get_queue().submit(TuneRequest(workspace_root, project_id, "demo", settings, shots=16))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..deploy.pass_fail import DEFAULT_ESCAPE_RATE
from ..engine.methods import DEFAULT_SHOTS
from ..engine.progress import Phase
from . import audit
from .backbone_cache import BACKBONES
from .job_queue import Job, JobContext, JobKind, JobQueue

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------ tuning jobs


@dataclass
class TuneRequest:
    """Everything a tuning job needs, as plain values (what the Tune page collected).

    settings: TuningConfig fields (method, epochs, lr, beta_v, beta_t, n_ctx, n_vis, seed, ...).
    """

    kind = JobKind.TUNE

    workspace_root: str
    project_id: str
    backbone: str
    settings: dict = field(default_factory=dict)
    shots: int = DEFAULT_SHOTS
    device: str | None = None
    make_projection: bool = True
    choose_lr: str | None = None  # "scaled", "quick" or "auto": settings["lr"] is replaced by the rate chosen
    escape_rate: float = DEFAULT_ESCAPE_RATE  # where the pass threshold is placed (the project's good class)
    budget_minutes: float | None = None  # end the run within this many minutes (engine/budget.py)
    start_from_run: str | None = None  # a saved run of the project whose prompts this run continues (warm_start.py)

    def label(self) -> str:
        return f"tune:{self.settings.get('method', 'dapt')}"

    def device_key(self) -> str:
        from ..engine.device import pick_device

        return str(pick_device(self.device))

    def config(self):
        from ..engine.methods import TuningConfig

        return TuningConfig(**{k: v for k, v in self.settings.items() if v is not None})

    def validate(self):
        """The config and the split, or the DaptError that says what to fix (before queueing)."""
        from .workspace import Workspace

        config = self.config()
        split = Workspace(self.workspace_root).project(self.project_id).split(self.shots, config.seed)
        return config, split

    def run(self, context: JobContext) -> dict:
        from ..engine.estimate import estimate_run
        from ..engine.tuning_run import tune_and_evaluate
        from .workspace import Workspace

        context.phase(Phase.LOADING)
        backbone = BACKBONES.get(self.backbone, self.device)
        context.check_cancel()
        context.phase(Phase.PREPARING)
        config = self.config()
        workspace = Workspace(self.workspace_root)
        project = workspace.project(self.project_id)
        split = project.split(self.shots, config.seed)
        context.check_cancel()
        good_class = project.good_class
        cache_dir = workspace.cache_dir
        request = {"backbone": self.backbone, "shots": self.shots, "settings": dict(self.settings),
                   "device": self.device, "choose_lr": self.choose_lr, "good_class": good_class,
                   "escape_rate": self.escape_rate, "budget_minutes": self.budget_minutes,
                   "start_from_run": self.start_from_run}
        project.mark_running(context.job_id, request)
        try:
            good = split.classnames.index(good_class) if good_class else None
            init_from, choose_lr = None, self.choose_lr
            if self.start_from_run:  # checked, and on the warm schedule before it is estimated
                from ..engine.warm_start import WarmStart, prepare

                saved = project.run(self.start_from_run).prompt_file
                start = WarmStart.load(saved)
                start.name = f"run {self.start_from_run} ({saved.name})"
                warm = prepare(start, backbone, config, split.classnames, split.train, self.shots, choose_lr)
                init_from, config, choose_lr = warm.start, warm.config, warm.lr_choice
            # From the step times this machine measured before (the Tune page's estimate), if any: the run card
            # then shows the estimate against the actual time. A budget measures them when there are none.
            estimate = estimate_run(backbone, split, config, shots=self.shots, lr_choice=choose_lr, good=good,
                                    cache_dir=cache_dir, measure=self.budget_minutes is not None)
            tuned = tune_and_evaluate(backbone, split, config, shots=self.shots, lr_choice=choose_lr,
                                      good_class=good_class, escape_rate=self.escape_rate,
                                      budget_minutes=self.budget_minutes, estimate=estimate, on_progress=context.report,
                                      on_phase=context.phase, cancel=context.cancel, cache_dir=cache_dir,
                                      init_from=init_from)
            context.check_cancel()
            # From here on the run is kept: a cancel that comes during saving is too late to matter.
            context.phase(Phase.SAVING)
            run = project.save_run(tuned.result, request=request, prompt_extra=tuned.prompt_extra() or None,
                                   metrics_extra=tuned.metrics_extra(), created_by=context.owner)
        finally:
            project.clear_running(context.job_id)
        audit.record(project.path, context.owner, audit.TUNE_FINISHED, run=run.id, job=context.job_id)
        from .projection import projection_for_run, warmup_status

        # The map is drawn now so Inspect opens at once, but only once umap-learn is compiled:
        # a job must not hold the device queue for the ~14 s first-fit compilation.
        if self.make_projection and warmup_status().ready:
            context.phase(Phase.MAPPING)
            try:
                projection_for_run(run)
            except Exception:  # the map is a convenience; Inspect makes it again if needed
                log.exception("projection of run %s failed", run.id)
        metrics = run.metrics
        return {"run_id": run.id, "accuracy": metrics.get("accuracy"),
                "zero_shot_accuracy": metrics.get("zero_shot_accuracy"), "n_test": metrics.get("n_test"),
                "train_seconds": metrics.get("train_seconds"), "notes": metrics.get("notes", []),
                # engine/run_health.py and engine/safeguard.py: codes the Tune page renders in words
                "health": metrics.get("health"), "safeguard": metrics.get("safeguard"),
                "time": _time_summary(tuned), **_headline_metrics(metrics)}


def _time_summary(tuned) -> dict:
    """What the run card says about time: the estimate (None where none was measured) against the actual
    seconds, and whether a time budget's deadline stopped training early."""
    budget = tuned.budget_record() or {}
    history = tuned.result.tuning.history
    return {"estimate": tuned.estimate.total if tuned.estimate is not None else None, "actual": tuned.seconds,
            "stopped_at_deadline": bool(budget.get("stopped_at_deadline")), "epochs_run": len(history),
            "epochs": tuned.result.tuning.epochs}


def _headline_metrics(metrics: dict) -> dict:
    """What the finished-run card leads with: chance, run health, escapes and overkill and the operating
    point, without the curves and held-out scores (a job's result stays small)."""
    pass_fail = metrics.get("pass_fail")
    point = (metrics.get("calibration") or {}).get("pass_fail")
    return {
        "chance": metrics.get("chance"), "health": metrics.get("health"),
        "pass_fail": None if not pass_fail else {k: v for k, v in pass_fail.items() if not k.startswith("curve")},
        "calibration": {"pass_fail": None if not point else {k: v for k, v in point.items()
                                                              if k not in ("defect_scores", "good_scores")}},
    }


# -------------------------------------------------------------------------- evaluation jobs


def compare_classes(file_classes: list[str], project_classes: list[str]) -> dict:
    """How a prompt file's classes line up with a project's: the same names (exactly or but for
    letter case), classes only the file knows, classes only the project has."""
    project_folded = {c.casefold(): c for c in project_classes}
    file_folded = {c.casefold() for c in file_classes}
    same = [c for c in file_classes if c in project_classes]
    case_only = [(c, project_folded[c.casefold()]) for c in file_classes
                 if c not in project_classes and c.casefold() in project_folded]
    only_file = [c for c in file_classes if c.casefold() not in project_folded]
    only_project = [c for c in project_classes if c.casefold() not in file_folded]
    return {"same": same, "case_only": case_only, "only_file": only_file, "only_project": only_project,
            "usable": len(same) + len(case_only) >= 1}


@dataclass
class EvaluateRequest:
    """Score an imported prompt file on a project's images (zero-shot and with the prompts).

    Images the file was tuned on (listed by sha256 in its header) are left out, since accuracy
    on them would flatter it."""

    kind = JobKind.EVALUATE

    workspace_root: str
    project_id: str
    data: bytes
    file_name: str
    device: str | None = None

    def label(self) -> str:
        return "evaluate"

    def device_key(self) -> str:
        from ..engine.device import pick_device

        return str(pick_device(self.device))

    def run(self, context: JobContext) -> dict:
        from ..engine.evaluation import comparison_metrics, evaluation_batches
        from ..engine.inference import Classifier
        from ..engine.prompt_file import load
        from ..errors import DataError
        from .workspace import Workspace

        file = load(self.data, self.file_name)
        context.phase(Phase.LOADING)
        classifier = Classifier.from_prompt_file(file, BACKBONES.get(file.backbone_spec, self.device))
        project = Workspace(self.workspace_root).project(self.project_id)
        trained_on = {item.get("sha256") for item in file.header.get("training_images", [])}
        items, left_out = project.labelled_images(file.classnames, exclude=trained_on)
        comparison = compare_classes(file.classnames, project.classes)
        if not items:
            raise DataError("None of this project's images can be scored with this prompt file: its classes "
                            f"({', '.join(file.classnames)}) have no images here that it was not tuned on.")
        context.check_cancel()
        total = evaluation_batches(classifier.model, len(items))
        report = context.counted(Phase.EVALUATE)
        done = 0

        def on_batch(*_):
            nonlocal done
            done += 1
            report(done, total)

        context.phase(Phase.EVALUATE)
        before, after = classifier.evaluate(items, cancel=context.cancel, on_batch=on_batch,
                                            cache_dir=Workspace(self.workspace_root).cache_dir)
        records = project.names_by_sha()
        rows = []
        for path, label, b, a in zip(after.paths, after.labels.tolist(), before.predictions.tolist(),
                                     after.predictions.tolist()):
            sha = Path(path).stem
            record = records.get(sha)
            rows.append({"sha256": sha, "name": record.name if record else Path(path).name,
                         "project_class": record.class_name if record else "", "true": file.classnames[label],
                         "zero_shot": file.classnames[b], "predicted": file.classnames[a]})
        return {
            "file_name": self.file_name, "backbone": file.backbone_spec, "method": file.method,
            "classnames": file.classnames, "comparison": comparison, "left_out": left_out,
            **comparison_metrics(before, after, classifier.good_class),
            "rows": rows, "skipped": [{"path": Path(s.path).name, "reason": s.reason} for s in after.skipped],
        }


# ------------------------------------------------------------------------ checks before tuning


FEASIBILITY_LABEL = "check"


@dataclass
class FeasibilityRequest:
    """The check before Start (dapt_core.engine.feasibility): can `backbone` tell the project's classes apart
    at all, on the training photos that `shots` and `seed` draw?

    The result is kept as JSON in the workspace's cache folder under a key of the backbone, the class names,
    the photos (content hashes, labels) and the good class, so a refresh, another session or a server restart
    shows it without computing again; the frozen features themselves are in the same folder's feature cache.
    """

    workspace_root: str
    project_id: str
    backbone: str
    shots: int = DEFAULT_SHOTS
    seed: int = 1
    device: str | None = None
    key: str | None = None  # set by prepare(): which result this request computes

    def device_key(self) -> str:
        from ..engine.device import pick_device

        return str(pick_device(self.device))

    def _inputs(self, split=None):
        """(backbone, split, good class, key); the backbone is loaded if it is not yet."""
        from ..engine.feasibility import result_key
        from ..engine.feature_cache import backbone_identity
        from .workspace import Workspace

        backbone = BACKBONES.get(self.backbone, self.device)
        project = Workspace(self.workspace_root).project(self.project_id)
        split = split if split is not None else project.split(self.shots, self.seed)
        good_class = project.good_class
        # A project stores each photo under its content hash, so the file name is the hash.
        photos = [(Path(item.path).stem, item.label) for item in split.train]
        return backbone, split, good_class, result_key(backbone_identity(backbone), split.classnames, photos,
                                                       good_class)

    def prepare(self, split=None) -> FeasibilityRequest:
        """Fill in `key` (the page passes the split it has already drawn); raises what the split raises."""
        self.key = self._inputs(split)[3]
        return self

    def result_path(self, key: str | None = None) -> Path:
        from .workspace import Workspace

        return Workspace(self.workspace_root).cache_dir / "feasibility" / f"{key or self.key}.json"

    def cached(self) -> dict | None:
        """The kept result for `key`, or None (never computed, or unreadable: then it is computed again)."""
        import json

        path = self.result_path()
        try:
            return json.loads(path.read_text(encoding="utf-8")) if self.key and path.is_file() else None
        except (OSError, ValueError):
            return None

    def submit(self, queue: JobQueue, owner: str | None = None) -> Job:
        """Queue the check in its own lane of the device: one check at a time, but never behind a tuning run,
        which could make a check of seconds wait for many minutes. A check that runs beside a tuning run
        slows it for those seconds only."""
        return queue.submit(self.run, kind=JobKind.CHECK, label=FEASIBILITY_LABEL,
                            device=f"{self.device_key()}:{FEASIBILITY_LABEL}", project_id=self.project_id,
                            request=self, owner=owner)

    def run(self, context: JobContext) -> dict:
        from ..engine.feasibility import check_feasibility
        from .storage import atomic_write_json
        from .workspace import Workspace

        context.phase(Phase.LOADING)
        backbone, split, good_class, key = self._inputs()
        self.key = key
        kept = self.cached()
        if kept is not None:  # another session's check of the same photos finished first
            return kept
        on_batch = context.counted(Phase.CHECK)
        context.phase(Phase.CHECK)
        result = check_feasibility(backbone, split.classnames, split.train, good_class=good_class,
                                   cache_dir=Workspace(self.workspace_root).cache_dir, cancel=context.cancel,
                                   on_batch=on_batch)
        result.update(shots=self.shots, seed=self.seed, key=key)
        try:
            atomic_write_json(self.result_path(key), result)
        except OSError as error:  # a full disk costs the next visit a few seconds, not this answer
            log.warning("could not keep the check's result in %s: %s", self.result_path(key), error)
        return result

