"""The process-wide job queue (studio/job_queue.py): one job per device at a time, places, progress, cancel,
failures; and the backbone cache the workers share (studio/backbone_cache.py)."""

from __future__ import annotations

import threading
import time

from dapt_core.engine.progress import Phase, Progress
from dapt_core.errors import DataError
from dapt_core.studio import backbone_cache, job_queue
from dapt_core.studio.backbone_cache import BackboneCache
from dapt_core.studio.job_queue import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobQueue
from dapt_core.studio.jobs import compare_classes


def _blocking_work(started: threading.Event, release: threading.Event, log: list, name: str):
    def work(context: job_queue.JobContext):
        log.append(("start", name))
        started.set()
        while not release.wait(0.01):
            context.check_cancel()
        log.append(("end", name))
        return name
    return work


def test_one_job_per_device_and_places_in_the_queue():
    queue = JobQueue()
    log: list = []
    events = {n: (threading.Event(), threading.Event()) for n in "abc"}
    a = queue.submit(_blocking_work(*events["a"], log, "a"), device="cpu", label="tune", project_id="p")
    b = queue.submit(_blocking_work(*events["b"], log, "b"), device="cpu", label="tune", project_id="p")
    c = queue.submit(_blocking_work(*events["c"], log, "c"), device="cpu", label="tune", project_id="q")
    assert events["a"][0].wait(30)
    assert (a.snapshot().state, a.snapshot().place) == (RUNNING, 0)
    assert (b.snapshot().state, b.snapshot().place) == (QUEUED, 1)
    assert (c.snapshot().state, c.snapshot().place) == (QUEUED, 2)
    assert not events["b"][0].is_set()  # b waits while a runs on the same device
    assert [j.id for j in queue.jobs("p", active_only=True)] == [a.id, b.id]
    events["a"][1].set()
    assert events["b"][0].wait(30)
    assert c.snapshot().place == 1
    events["b"][1].set()
    events["c"][1].set()
    assert c.wait(30)
    assert [entry for entry in log if entry[0] == "start"] == [("start", "a"), ("start", "b"), ("start", "c")]
    assert log.index(("end", "a")) < log.index(("start", "b"))
    assert [j.snapshot().state for j in (a, b, c)] == [DONE] * 3
    assert a.snapshot().result == "a" and a.snapshot().place == -1


def _start_order(log: list) -> list:
    return [name for what, name in log if what == "start"]


def test_the_queue_is_fair_between_owners():
    """A's three jobs do not starve B's one: B, who submitted later but has had nothing run, goes second;
    the places each job is told match the order they then run in."""
    queue = JobQueue()
    log: list = []
    names = ["a1", "a2", "a3", "b1"]
    events = {n: (threading.Event(), threading.Event()) for n in names}
    jobs = {n: queue.submit(_blocking_work(*events[n], log, n), device="cpu", owner=n[0].upper())
            for n in names}
    assert events["a1"][0].wait(30)
    assert {n: jobs[n].snapshot().place for n in names} == {"a1": 0, "b1": 1, "a2": 2, "a3": 3}
    for name in ["a1", "b1", "a2"]:
        events[name][1].set()
        assert jobs[name].wait(30)
    events["a3"][1].set()
    assert jobs["a3"].wait(30)
    assert _start_order(log) == ["a1", "b1", "a2", "a3"]


def test_places_follow_the_fair_order_as_jobs_come_and_go():
    queue = JobQueue()
    log: list = []
    names = ["a1", "a2", "b1", "b2", "c1"]
    events = {n: (threading.Event(), threading.Event()) for n in names}
    jobs = {n: queue.submit(_blocking_work(*events[n], log, n), device="cpu", owner=n[0])
            for n in names}
    assert events["a1"][0].wait(30)
    # a has just started; b and c have had nothing, b waited longest: b1, c1, a2, b2.
    predicted = sorted((n for n in names if n != "a1"), key=lambda n: jobs[n].snapshot().place)
    assert predicted == ["b1", "c1", "a2", "b2"]
    for name in ["a1", *predicted]:
        events[name][1].set()
        assert jobs[name].wait(30)
    assert _start_order(log) == ["a1", *predicted]


def test_one_owner_or_none_is_first_come_first_served():
    for owner in (None, "alice"):
        queue = JobQueue()
        log: list = []
        names = ["j1", "j2", "j3", "j4"]
        events = {n: (threading.Event(), threading.Event()) for n in names}
        jobs = {n: queue.submit(_blocking_work(*events[n], log, n), device="cpu", owner=owner) for n in names}
        assert events["j1"][0].wait(30)
        assert [jobs[n].snapshot().place for n in names] == [0, 1, 2, 3]
        for name in names:
            events[name][1].set()
            assert jobs[name].wait(30)
        assert _start_order(log) == names


def test_devices_run_side_by_side():
    queue = JobQueue()
    log: list = []
    cpu = (threading.Event(), threading.Event())
    gpu = (threading.Event(), threading.Event())
    first = queue.submit(_blocking_work(*cpu, log, "cpu"), device="cpu")
    second = queue.submit(_blocking_work(*gpu, log, "gpu"), device="cuda:0")
    assert cpu[0].wait(30) and gpu[0].wait(30)
    cpu[1].set()
    gpu[1].set()
    assert first.wait(30) and second.wait(30)


def test_cancel_a_queued_job_at_once_and_a_running_one_within_a_step():
    queue = JobQueue()
    log: list = []
    running = (threading.Event(), threading.Event())
    waiting = (threading.Event(), threading.Event())
    a = queue.submit(_blocking_work(*running, log, "a"), device="cpu")
    b = queue.submit(_blocking_work(*waiting, log, "b"), device="cpu")
    assert running[0].wait(30)
    assert queue.cancel(b.id)
    assert b.snapshot().state == CANCELLED
    assert queue.cancel(a.id)
    assert a.wait(30)
    assert a.snapshot().state == CANCELLED
    assert ("end", "a") not in log  # stopped at its next check, not run to the end
    assert not waiting[0].is_set()  # the dropped job never ran
    assert not queue.cancel(a.id)  # already final


def test_failures_are_reported_not_raised():
    queue = JobQueue()

    def user_error(context):
        raise DataError("Class 'dent' has no images.")

    def bug(context):
        raise ZeroDivisionError("division by zero")

    first = queue.submit(user_error, device="cpu")
    second = queue.submit(bug, device="cpu")
    assert second.wait(30)
    assert first.snapshot().state == FAILED and first.snapshot().error == "Class 'dent' has no images."
    assert second.snapshot().state == FAILED and "ZeroDivisionError" in second.snapshot().error


def test_progress_snapshots_and_history_are_thread_safe_copies(monkeypatch):
    monkeypatch.setattr(job_queue, "MAX_HISTORY_POINTS", 50)
    queue = JobQueue()
    go, reported, polling = threading.Event(), threading.Event(), threading.Event()

    def work(context):
        polling.wait(30)
        for step in range(1, 2001):
            time.sleep(0)  # let the readers in between steps, as a real step's seconds do
            context.report(Progress(phase=Phase.TRAIN, epoch=1 + step // 200, epochs=10, step=step, total_steps=2000,
                                    loss=1.0 / step, ce=0.5, intra=0.1, inter=0.2, train_accuracy=0.5, lr=0.1,
                                    elapsed=step * 0.01, eta=(2000 - step) * 0.01))
        reported.set()
        go.wait(30)

    job = queue.submit(work, device="cpu")
    # A page polls while the worker writes: every snapshot it gets is whole and its own.
    seen, problems = [], []

    def poll():
        while not reported.is_set():
            snap = job.snapshot()
            steps = [row["step"] for row in snap.history]
            if not isinstance(snap.history, tuple) or steps != sorted(steps) or len(steps) > 50:
                problems.append(steps)
            if steps and snap.progress.step < steps[-1]:
                problems.append(("progress behind its history", snap.progress.step, steps[-1]))
            seen.append(len(steps))

    readers = [threading.Thread(target=poll) for _ in range(2)]
    for reader in readers:
        reader.start()
    polling.set()
    assert reported.wait(30)
    for reader in readers:
        reader.join(30)
    snap = job.snapshot()
    assert not problems, problems[:3]
    assert len(seen) > 1 and len(set(seen)) > 1  # the readers saw the history grow, not only its end
    assert snap.progress.phase == Phase.TRAIN and snap.progress.fraction == 1.0
    assert 0 < len(snap.history) <= 50  # thinned, not unbounded
    assert snap.history[0]["step"] == 1 and snap.history[-1]["step"] <= 2000
    before = snap.history
    go.set()
    assert job.wait(30)
    assert job.snapshot().history == before  # a snapshot is not changed by what the job does after it


def test_unavailable_weights_are_reported_with_the_way_out(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = BackboneCache()
    status = cache.check("ViT-B-32:openai", "cpu")
    assert not status.ok and "demo" in status.message
    assert cache.check("no-such-arch:random", "cpu").ok is False


def test_compare_classes():
    result = compare_classes(["No defect", "scratch", "rust"], ["no defect", "scratch", "dent"])
    assert result["same"] == ["scratch"]
    assert result["case_only"] == [("No defect", "no defect")]
    assert result["only_file"] == ["rust"] and result["only_project"] == ["dent"]
    assert result["usable"]
    assert not compare_classes(["a"], ["b"])["usable"]




def test_a_backbone_asked_for_by_several_sessions_at_once_is_loaded_once(monkeypatch):
    loads = []

    def slow_load(spec, device):
        loads.append(spec)
        time.sleep(0.2)  # long enough for every thread to ask while the first load runs
        return object()

    monkeypatch.setattr("dapt_core.engine.backbone.load_backbone", slow_load)
    cache = BackboneCache()
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("demo", "cpu"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert loads == ["demo"] and len(got) == 4 and len({id(g) for g in got}) == 1


def test_the_backbone_cache_lets_the_least_recently_used_backbone_go(monkeypatch):
    loads = []
    monkeypatch.setattr("dapt_core.engine.backbone.load_backbone", lambda spec, device: loads.append(spec) or spec)
    cache = BackboneCache(keep=2)
    cache.get("a", "cpu")
    cache.get("b", "cpu")
    cache.get("a", "cpu")  # a used again: b is now the least recent
    cache.get("c", "cpu")  # three typed in a row: only two are held
    assert loads == ["a", "b", "c"]
    cache.get("a", "cpu")
    assert loads == ["a", "b", "c"]  # a was kept
    cache.get("b", "cpu")
    assert loads == ["a", "b", "c", "b"]  # b had been let go, so it is loaded again
    assert backbone_cache.BackboneCache.KEEP >= 2  # the demo model and one real backbone fit together


def test_a_finished_job_lets_go_of_what_its_work_was_handed():
    """Finished jobs stay listed (for their cards), so their work must not keep what it was given alive: a drift
    check is handed the uploaded photos' bytes."""
    import gc
    import weakref

    class Upload(bytearray):
        pass

    queue = JobQueue()
    jobs, handed = [], []
    for outcome in ("done", "failed"):
        upload = Upload(1024)
        handed.append(weakref.ref(upload))

        def work(context, upload=upload, outcome=outcome):
            if outcome == "failed":
                raise DataError("No photos to compare.")
            return len(upload)

        jobs.append(queue.submit(work, device="cpu", label="drift", project_id="p"))
        del upload, work
    for job in jobs:
        assert job.wait(30)
    assert [job.state for job in jobs] == [DONE, FAILED] and jobs[0].snapshot().result == 1024
    gc.collect()
    assert [ref() for ref in handed] == [None, None]
    assert [job.id for job in queue.jobs("p")] == [job.id for job in jobs]  # still listed
