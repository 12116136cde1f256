"""The process-wide job queue: tuning runs in background threads, one at a time per device.

A Streamlit server is one process serving every browser session. Two people pressing Start at
once must not train two models on one CPU or GPU at the same time (both would crawl, and a GPU
could run out of memory), so jobs wait in a queue per device and each is told its place.

Threads never touch Streamlit. A worker writes into its Job under a lock; pages read immutable
snapshots (`Job.snapshot()`) from a fragment that polls. Cancelling sets a threading.Event that
the engine checks before every step, so a run stops within one step and saves nothing.

    queue = get_queue()
    job = queue.submit(TuneRequest(workspace_root, project_id, "demo", settings, shots=16))
    snap = job.snapshot()      # state, place in queue, progress, loss history, error, result
    queue.cancel(job.id)
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..deploy.pass_fail import DEFAULT_ESCAPE_RATE
from ..engine.methods import DEFAULT_SHOTS
from ..engine.progress import Progress, eta_seconds
from ..errors import Cancelled, DaptError

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE_STATES = (QUEUED, RUNNING)
FINAL_STATES = (DONE, FAILED, CANCELLED)

# Loss curves of long runs are thinned (every other point dropped, repeatedly) beyond this many
# points: a chart cannot show more, and each poll copies the history.
MAX_HISTORY_POINTS = 2000
# Finished jobs kept for display after they end (per process).
KEEP_FINISHED = 200


# ------------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class JobSnapshot:
    id: str
    label: str
    project_id: str | None
    device: str
    state: str
    place: int  # 0 while running; 1 = next in line; -1 once finished
    submitted: float
    started: float | None
    finished: float | None
    progress: Progress
    history: tuple[dict, ...]  # per training step: step, epoch, loss, ce, intra, inter, train_accuracy
    error: str | None
    error_code: str | None
    error_params: dict
    result: Any
    request: Any

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


# ------------------------------------------------------------------------------------- jobs


class JobContext:
    """Handed to a job's work function: report progress, see whether to stop."""

    def __init__(self, job: Job):
        self._job = job
        self.job_id = job.id
        self.cancel = job.cancel_event

    def phase(self, name: str) -> None:
        self._job._set_progress(Progress(name, updated=time.time()))

    def report(self, progress) -> None:
        """Callback for dapt_core's on_progress (called from this worker thread)."""
        self._job._record(progress)

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("Cancelled; nothing was saved.")


class Job:
    def __init__(self, work: Callable[[JobContext], Any], *, label: str, device: str, project_id: str | None,
                 request: Any = None):
        self.id = uuid.uuid4().hex[:12]
        self.work = work
        self.label = label
        self.device = device
        self.project_id = project_id
        self.request = request
        self.cancel_event = threading.Event()
        self._lock = threading.Lock()
        self._state = QUEUED
        self._submitted = time.time()
        self._started: float | None = None
        self._finished: float | None = None
        self._progress = Progress("queued", updated=self._submitted)
        self._history: list[dict] = []
        self._stride = 1  # record every n-th step once the history has been thinned
        self._error: str | None = None
        self._error_code: str | None = None
        self._error_params: dict = {}
        self._result: Any = None
        self._queue: JobQueue | None = None
        self.done_event = threading.Event()

    # -- written by the worker thread
    def _set_progress(self, progress: Progress) -> None:
        with self._lock:
            self._progress = progress

    def _record(self, progress: Progress) -> None:
        snap = replace(progress, updated=time.time())
        with self._lock:
            self._progress = snap
            if progress.phase != "train" or progress.step % self._stride:
                return
            self._history.append({"step": progress.step, "epoch": progress.epoch, "loss": progress.loss,
                                  "ce": progress.ce, "intra": progress.intra, "inter": progress.inter,
                                  "train_accuracy": progress.train_accuracy})
            if len(self._history) > MAX_HISTORY_POINTS:
                self._history = self._history[::2]
                self._stride *= 2

    def _finish(self, state: str, *, result=None, error: BaseException | str | None = None) -> None:
        with self._lock:
            self._state = state
            self._finished = time.time()
            self._result = result
            if error is not None:
                self._error = str(error)
                self._error_code = getattr(error, "code", None)
                self._error_params = dict(getattr(error, "params", {}) or {})
            if state == CANCELLED:
                self._progress = replace(self._progress, phase="cancelled", updated=time.time())
        self.done_event.set()

    # -- read by anyone
    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def snapshot(self) -> JobSnapshot:
        place = self._queue.place(self) if self._queue is not None else -1
        with self._lock:
            return JobSnapshot(self.id, self.label, self.project_id, self.device, self._state, place,
                               self._submitted, self._started, self._finished, self._progress,
                               tuple(self._history), self._error, self._error_code, dict(self._error_params),
                               self._result, self.request)

    def wait(self, timeout: float | None = None) -> bool:
        return self.done_event.wait(timeout)


class JobQueue:
    """Jobs wait per device; one worker thread per device runs them in submission order."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: dict[str, deque[Job]] = {}
        self._running: dict[str, Job] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._jobs: dict[str, Job] = {}

    def submit(self, work: Callable[[JobContext], Any] | TuneRequest | EvaluateRequest, *, label: str | None = None,
               device: str | None = None, project_id: str | None = None, request: Any = None) -> Job:
        """Queue `work` (a function of a JobContext, or a TuneRequest) on `device`."""
        if isinstance(work, (TuneRequest, EvaluateRequest)):
            request = work
            device = device or work.device_key()
            if isinstance(work, TuneRequest):
                label = label or f"tune:{work.settings.get('method', 'dapt')}"
            else:
                label = label or "evaluate"
            project_id = project_id or work.project_id
            work = request.run
        job = Job(work, label=label or "job", device=device or "cpu", project_id=project_id, request=request)
        job._queue = self
        with self._lock:
            self._jobs[job.id] = job
            self._pending.setdefault(job.device, deque()).append(job)
            worker = self._workers.get(job.device)
            if worker is None or not worker.is_alive():
                # An idle device takes the job now, so the page that pressed Start already shows it
                # running (not "place 1 in the queue") in the same run.
                worker = threading.Thread(target=self._work, args=(job.device, self._claim_next(job.device)),
                                          name=f"dapt-jobs-{job.device}", daemon=True)
                self._workers[job.device] = worker
                worker.start()
            self._forget_old()
        return job

    def _claim_next(self, device: str) -> Job | None:
        """The next job of `device`, marked running; None when none waits (call under self._lock)."""
        pending = self._pending.get(device)
        if not pending:
            return None
        job = pending.popleft()
        self._running[device] = job
        with job._lock:
            job._state = RUNNING
            job._started = time.time()
            job._progress = Progress("loading", updated=job._started)
        return job

    def _work(self, device: str, job: Job) -> None:
        while True:
            self._run(job)
            with self._lock:
                self._running.pop(device, None)
                job = self._claim_next(device)
                if job is None:
                    # Leaving under the lock: a submit that comes after this sees no worker.
                    self._workers.pop(device, None)
                    return

    @staticmethod
    def _run(job: Job) -> None:
        context = JobContext(job)
        try:
            if job.cancel_event.is_set():
                raise Cancelled("Cancelled before it started.")
            result = job.work(context)
        except Cancelled as error:
            job._finish(CANCELLED, error=error)
        except DaptError as error:
            job._finish(FAILED, error=error)
        except Exception as error:  # a bug: keep the traceback in the log, tell the user plainly
            log.exception("job %s failed", job.id)
            job._finish(FAILED, error=RuntimeError(
                f"Unexpected error ({type(error).__name__}: {error}). Details are in the server log.\n"
                + "".join(traceback.format_exception_only(type(error), error)).strip()))
        else:
            job._finish(DONE, result=result)

    def place(self, job: Job) -> int:
        with self._lock:
            if self._running.get(job.device) is job:
                return 0
            pending = self._pending.get(job.device) or ()
            for index, waiting in enumerate(pending):
                if waiting is job:
                    return index + 1
        return -1

    def cancel(self, job_id: str) -> bool:
        """Ask a job to stop: a queued one is dropped at once, a running one stops within a step."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state in FINAL_STATES:
                return False
            job.cancel_event.set()
            pending = self._pending.get(job.device)
            if pending is not None and job in pending:
                pending.remove(job)
                dropped = True
            else:
                dropped = False
        if dropped:
            job._finish(CANCELLED, error=Cancelled("Cancelled before it started."))
        return True

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self, project_id: str | None = None, *, active_only: bool = False) -> list[Job]:
        """Jobs in submission order, optionally of one project and only queued or running ones."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in jobs if (project_id is None or j.project_id == project_id)
                and (not active_only or j.state in ACTIVE_STATES)]

    def waiting(self, device: str | None = None) -> int:
        with self._lock:
            if device is not None:
                return len(self._pending.get(device, ()))
            return sum(len(q) for q in self._pending.values())

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in FINAL_STATES]
        for job in finished[:-KEEP_FINISHED] if len(finished) > KEEP_FINISHED else []:
            self._jobs.pop(job.id, None)


_QUEUE: JobQueue | None = None
_QUEUE_LOCK = threading.Lock()


def get_queue() -> JobQueue:
    """The one queue of this process (every browser session shares it)."""
    global _QUEUE
    with _QUEUE_LOCK:
        if _QUEUE is None:
            _QUEUE = JobQueue()
        return _QUEUE


# --------------------------------------------------------------------------------- backbones


@dataclass(frozen=True)
class Availability:
    ok: bool
    spec: str
    message: str | None = None  # why not, when not ok
    description: dict | None = None
    checked: float = 0.0


class BackboneCache:
    """Loaded backbones by (spec, device), shared by the app and the workers.

    A backbone is frozen and never changed by tuning (only the prompts learn), so one instance
    can serve several threads. Failed loads are remembered for a while, since a check for
    unavailable weights costs seconds."""

    RETRY_AFTER = 120.0

    def __init__(self):
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str], Any] = {}
        self._failed: dict[tuple[str, str], Availability] = {}
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}

    def get(self, spec: str, device: str | None = None):
        """The loaded backbone; raises BackboneUnavailable."""
        from ..engine.backbone import load_backbone
        from ..engine.device import pick_device

        key = (spec.strip(), str(pick_device(device)))
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # two sessions asking at once load it once
            with self._lock:
                if key in self._loaded:
                    return self._loaded[key]
            try:
                backbone = load_backbone(key[0], key[1])
            except DaptError as error:
                with self._lock:
                    self._failed[key] = Availability(False, key[0], str(error), checked=time.time())
                raise
            with self._lock:
                self._loaded[key] = backbone
                self._failed.pop(key, None)
            return backbone

    def check(self, spec: str, device: str | None = None, *, again: bool = False) -> Availability:
        """Whether `spec` can be loaded here (loading it if so, which makes Start fast)."""
        from ..engine.device import pick_device

        key = (spec.strip(), str(pick_device(device)))
        with self._lock:
            failed = self._failed.get(key)
        if failed is not None and not again and time.time() - failed.checked < self.RETRY_AFTER:
            return failed
        try:
            backbone = self.get(spec, device)
        except DaptError as error:
            return Availability(False, key[0], str(error), checked=time.time())
        return Availability(True, key[0], None, backbone.describe(), time.time())

    def loaded(self, spec: str, device: str | None = None) -> bool:
        from ..engine.device import pick_device

        with self._lock:
            return (spec.strip(), str(pick_device(device))) in self._loaded


BACKBONES = BackboneCache()


# ------------------------------------------------------------------------------ tuning jobs


@dataclass
class TuneRequest:
    """Everything a tuning job needs, as plain values (what the Tune page collected).

    settings: TuningConfig fields (method, epochs, lr, beta_v, beta_t, n_ctx, n_vis, seed, ...).
    """

    workspace_root: str
    project_id: str
    backbone: str
    settings: dict = field(default_factory=dict)
    shots: int = DEFAULT_SHOTS
    device: str | None = None
    make_projection: bool = True
    choose_lr: str | None = None  # "scaled", "quick" or "auto": settings["lr"] is replaced by the rate chosen
    escape_rate: float = DEFAULT_ESCAPE_RATE  # where the pass threshold is placed (the project's good class)

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
        from ..engine.experiment import run_experiment
        from .workspace import Workspace

        context.phase("loading")
        backbone = BACKBONES.get(self.backbone, self.device)
        context.check_cancel()
        context.phase("preparing")
        config = self.config()
        project = Workspace(self.workspace_root).project(self.project_id)
        split = project.split(self.shots, config.seed)
        context.check_cancel()
        good_class = project.good_class
        request = {"backbone": self.backbone, "shots": self.shots, "settings": dict(self.settings),
                   "device": self.device, "choose_lr": self.choose_lr, "good_class": good_class,
                   "escape_rate": self.escape_rate}
        project.mark_running(context.job_id, request)
        try:
            selection = None
            if self.choose_lr and config.trains:
                from dataclasses import replace

                from ..engine.selection import choose_learning_rate

                context.phase("select")
                selection = choose_learning_rate(self.choose_lr, backbone, split.classnames, split.train, config,
                                                 shots=self.shots, on_progress=context.report, cancel=context.cancel,
                                                 good=split.classnames.index(good_class) if good_class else None)
                config = replace(config, lr=selection.lr)
            context.phase("prototypes" if config.visual_prompt and config.beta_v > 0 else "train")
            result = run_experiment(backbone, split, config, shots=self.shots, on_progress=context.report,
                                    cancel=context.cancel, cache_dir=Workspace(self.workspace_root).cache_dir,
                                    good_class=good_class, escape_rate=self.escape_rate)
            context.check_cancel()
            # From here on the run is kept: a cancel that comes during saving is too late to matter.
            context.phase("saving")
            run = project.save_run(result, request=request,
                                   prompt_extra={"lr_selection": selection.to_dict()} if selection else None)
        finally:
            project.clear_running(context.job_id)
        from .projection import projection_for_run, warmup_status

        # The map is drawn now so Inspect opens at once, but only once umap-learn is compiled:
        # a job must not hold the device queue for the ~14 s first-fit compilation.
        if self.make_projection and warmup_status().ready:
            context.phase("mapping")
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
                **_headline_metrics(metrics)}


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

    workspace_root: str
    project_id: str
    data: bytes
    file_name: str
    device: str | None = None

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
        context.phase("loading")
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
        started = time.perf_counter()
        done = 0

        def on_batch(*_):
            nonlocal done
            done += 1
            elapsed = time.perf_counter() - started
            context.report(Progress("evaluate", step=done, total_steps=total, elapsed=elapsed,
                                    eta=eta_seconds(elapsed, done, total)))

        context.phase("evaluate")
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

    def submit(self, queue: JobQueue) -> Job:
        """Queue the check in its own lane of the device: one check at a time, but never behind a tuning run,
        which could make a check of seconds wait for many minutes. A check that runs beside a tuning run
        slows it for those seconds only."""
        return queue.submit(self.run, label=FEASIBILITY_LABEL, device=f"{self.device_key()}:{FEASIBILITY_LABEL}",
                            project_id=self.project_id, request=self)

    def run(self, context: JobContext) -> dict:
        from ..engine.feasibility import check_feasibility
        from .storage import atomic_write_json
        from .workspace import Workspace

        context.phase("loading")
        backbone, split, good_class, key = self._inputs()
        self.key = key
        kept = self.cached()
        if kept is not None:  # another session's check of the same photos finished first
            return kept
        started = time.perf_counter()

        def on_batch(done: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            context.report(Progress("check", step=done, total_steps=total, elapsed=elapsed,
                                    eta=eta_seconds(elapsed, done, total)))

        context.phase("check")
        result = check_feasibility(backbone, split.classnames, split.train, good_class=good_class,
                                   cache_dir=Workspace(self.workspace_root).cache_dir, cancel=context.cancel,
                                   on_batch=on_batch)
        result.update(shots=self.shots, seed=self.seed, key=key)
        try:
            atomic_write_json(self.result_path(key), result)
        except OSError as error:  # a full disk costs the next visit a few seconds, not this answer
            log.warning("could not keep the check's result in %s: %s", self.result_path(key), error)
        return result
