"""The process-wide job queue: tuning runs in background threads, one at a time per device.

A Streamlit server is one process serving every browser session. Two people pressing Start at
once must not train two models on one CPU or GPU at the same time (both would crawl, and a GPU
could run out of memory), so jobs wait in a queue per device and each is told its place.

Threads never touch Streamlit. A worker writes into its Job under a lock; pages read immutable
snapshots (`Job.snapshot()`) from a fragment that polls. Cancelling sets a threading.Event that
the engine checks before every step, so a run stops within one step and saves nothing.

    queue = get_queue()
    job = queue.submit(request)  # any JobRequest: studio/jobs.py's tune, evaluate and check requests
    snap = job.snapshot()      # state, kind, place in queue, progress, loss history, error, result
    queue.cancel(job.id)

The queue knows nothing of what its jobs do: a request says its kind, label, project and device and
runs itself with a JobContext.

The line is fair between people: when a device frees up, the next job is that of the owner whose last
job on it started longest ago (or who has had none), so one person's three runs do not make another's
one wait behind all of them. One owner's jobs keep their submission order; with a single owner (or none,
as on a machine without accounts) the line is plain first come, first served.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ..engine.loss_terms import CE, INTER, INTRA, LOSS
from ..engine.progress import Phase, Progress, eta_seconds
from ..errors import Cancelled, DaptError
from .disk import disk_error

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE_STATES = (QUEUED, RUNNING)
FINAL_STATES = (DONE, FAILED, CANCELLED)

# Loss curves of long runs are thinned (every other point dropped, repeatedly) beyond this many
# points: a chart cannot show more, and each poll copies the history.
MAX_HISTORY_POINTS = 2000
# Finished jobs kept for display after they end (per process).
KEEP_FINISHED = 200


class JobKind:
    """What a job does, as the pages tell jobs apart (never from their labels)."""

    TUNE = "tune"
    EVALUATE = "evaluate"
    CHECK = "check"  # the check before Start
    OTHER = "job"


class JobRequest(Protocol):
    """What the queue needs of a request (studio/jobs.py's dataclasses are requests)."""

    kind: str
    project_id: str | None

    def label(self) -> str: ...

    def device_key(self) -> str: ...

    def run(self, context: JobContext) -> Any: ...


# ------------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class JobSnapshot:
    id: str
    kind: str  # a JobKind
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
    owner: str | None = None  # the signed-in user who started it; None on a machine without accounts

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


# ------------------------------------------------------------------------------------- jobs


class JobContext:
    """Handed to a job's work function: report progress, see whether to stop."""

    def __init__(self, job: Job):
        self._job = job
        self.job_id = job.id
        self.owner = job.owner  # whom the job acts for: the run it saves records them (studio/guarded.py)
        self.cancel = job.cancel_event

    def phase(self, name: str) -> None:
        self._job._set_progress(Progress(name, updated=time.time()))

    def report(self, progress) -> None:
        """Callback for dapt_core's on_progress (called from this worker thread)."""
        self._job._record(progress)

    def counted(self, phase: str) -> Callable[[int, int], None]:
        """A callback of (done, total) that reports `phase` with the time left, timed from now: for work that
        counts its own steps (batches of photos), as the check, an evaluation, a ranking and a drift check do."""
        started = time.perf_counter()

        def report(done: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            self.report(Progress(phase, step=done, total_steps=total, elapsed=elapsed,
                                 eta=eta_seconds(elapsed, done, total)))

        return report

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("Cancelled; nothing was saved.")


class Job:
    def __init__(self, work: Callable[[JobContext], Any], *, label: str, device: str, project_id: str | None,
                 request: Any = None, kind: str = JobKind.OTHER, owner: str | None = None):
        self.id = uuid.uuid4().hex[:12]
        self.owner = owner
        self.work = work
        self.kind = kind
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
        self._progress = Progress(Phase.QUEUED, updated=self._submitted)
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
            if progress.phase != Phase.TRAIN or progress.step % self._stride:
                return
            self._history.append({"step": progress.step, "epoch": progress.epoch, LOSS: progress.loss,
                                  CE: progress.ce, INTRA: progress.intra, INTER: progress.inter,
                                  "train_accuracy": progress.train_accuracy})
            if len(self._history) > MAX_HISTORY_POINTS:
                self._history = self._history[::2]
                self._stride *= 2

    def _finish(self, state: str, *, result=None, error: BaseException | str | None = None) -> None:
        with self._lock:
            self._state = state
            self._finished = time.time()
            self._result = result
            # A finished job stays listed (KEEP_FINISHED) but never runs again: let go of its work, whose
            # closure may hold what it was handed (a drift check's uploaded photos).
            self.work = None
            if error is not None:
                self._error = str(error)
                self._error_code = getattr(error, "code", None)
                self._error_params = dict(getattr(error, "params", {}) or {})
            if state == CANCELLED:
                self._progress = replace(self._progress, phase=Phase.CANCELLED, updated=time.time())
        self.done_event.set()

    # -- read by anyone
    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def snapshot(self) -> JobSnapshot:
        place = self._queue.place(self) if self._queue is not None else -1
        with self._lock:
            return JobSnapshot(self.id, self.kind, self.label, self.project_id, self.device, self._state, place,
                               self._submitted, self._started, self._finished, self._progress,
                               tuple(self._history), self._error, self._error_code, dict(self._error_params),
                               self._result, self.request, self.owner)

    def wait(self, timeout: float | None = None) -> bool:
        return self.done_event.wait(timeout)


def fair_order(pending: list[Job], last_start: dict[str | None, int]) -> list[Job]:
    """The order `pending` (in submission order) will run in: round-robin between owners, the owner whose
    last job started longest ago first (`last_start`: owner -> a start counter, higher = later; an owner
    without an entry has had none and comes before everyone who has, earliest submission first)."""
    by_owner: dict[str | None, deque[Job]] = {}
    position = {id(job): index for index, job in enumerate(pending)}  # submission order, never a tie
    for job in pending:
        by_owner.setdefault(job.owner, deque()).append(job)
    started = dict(last_start)
    tick = max(started.values(), default=0)
    order: list[Job] = []
    while by_owner:
        # Never started sorts before any start; among those, whoever has waited longest goes first.
        owner = min(by_owner, key=lambda o: (o in started, started.get(o, 0), position[id(by_owner[o][0])]))
        order.append(by_owner[owner].popleft())
        if not by_owner[owner]:
            del by_owner[owner]
        tick += 1
        started[owner] = tick
    return order


class JobQueue:
    """Jobs wait per device; one worker thread per device runs them, fairly between owners."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: dict[str, deque[Job]] = {}
        # Per device, owner -> when their last job started there (a counter, so no two starts tie).
        self._last_start: dict[str, dict[str | None, int]] = {}
        self._running: dict[str, Job] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._jobs: dict[str, Job] = {}

    def submit(self, work: Callable[[JobContext], Any] | JobRequest, *, label: str | None = None,
               device: str | None = None, project_id: str | None = None, request: Any = None,
               kind: str = JobKind.OTHER, owner: str | None = None) -> Job:
        """Queue `work` on `device`: a JobRequest (which says its kind, label, project and device), or a
        function of a JobContext with those given here."""
        if not callable(work):
            request = work
            kind = work.kind
            label = label or work.label()
            device = device or work.device_key()
            project_id = project_id or work.project_id
            work = request.run
        job = Job(work, label=label or kind, device=device or "cpu", project_id=project_id, request=request,
                  kind=kind, owner=owner)
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
        last_start = self._last_start.setdefault(device, {})
        job = fair_order(list(pending), last_start)[0]
        pending.remove(job)
        last_start[job.owner] = max(last_start.values(), default=0) + 1
        self._running[device] = job
        with job._lock:
            job._state = RUNNING
            job._started = time.time()
            job._progress = Progress(Phase.LOADING, updated=job._started)
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
            told = disk_error(error)  # a full or read-only disk is no bug: said plainly, without paths
            if told is not None:
                job._finish(FAILED, error=told)
                return
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
            pending = self._pending.get(job.device)
            if not pending or job not in pending:
                return -1
            order = fair_order(list(pending), self._last_start.get(job.device, {}))
            for index, waiting in enumerate(order):
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
