"""The process-wide job queue: one job per device at a time, places, progress, cancel, failures;
and real tuning / evaluation jobs with a tiny CLIP."""

from __future__ import annotations

import threading
import time

import pytest

from dapt_core.engine.progress import Progress
from dapt_core.errors import DataError
from dapt_core.studio import jobs
from dapt_core.studio.workspace import Workspace


def _blocking_work(started: threading.Event, release: threading.Event, log: list, name: str):
    def work(context: jobs.JobContext):
        log.append(("start", name))
        started.set()
        while not release.wait(0.01):
            context.check_cancel()
        log.append(("end", name))
        return name
    return work


def test_one_job_per_device_and_places_in_the_queue():
    queue = jobs.JobQueue()
    log: list = []
    events = {n: (threading.Event(), threading.Event()) for n in "abc"}
    a = queue.submit(_blocking_work(*events["a"], log, "a"), device="cpu", label="tune", project_id="p")
    b = queue.submit(_blocking_work(*events["b"], log, "b"), device="cpu", label="tune", project_id="p")
    c = queue.submit(_blocking_work(*events["c"], log, "c"), device="cpu", label="tune", project_id="q")
    assert events["a"][0].wait(30)
    time.sleep(0.05)
    assert (a.snapshot().state, a.snapshot().place) == (jobs.RUNNING, 0)
    assert (b.snapshot().state, b.snapshot().place) == (jobs.QUEUED, 1)
    assert (c.snapshot().state, c.snapshot().place) == (jobs.QUEUED, 2)
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
    assert [j.snapshot().state for j in (a, b, c)] == [jobs.DONE] * 3
    assert a.snapshot().result == "a" and a.snapshot().place == -1


def test_devices_run_side_by_side():
    queue = jobs.JobQueue()
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
    queue = jobs.JobQueue()
    log: list = []
    running = (threading.Event(), threading.Event())
    waiting = (threading.Event(), threading.Event())
    a = queue.submit(_blocking_work(*running, log, "a"), device="cpu")
    b = queue.submit(_blocking_work(*waiting, log, "b"), device="cpu")
    assert running[0].wait(30)
    assert queue.cancel(b.id)
    assert b.snapshot().state == jobs.CANCELLED
    assert queue.cancel(a.id)
    assert a.wait(30)
    assert a.snapshot().state == jobs.CANCELLED
    assert ("end", "a") not in log  # stopped at its next check, not run to the end
    assert not waiting[0].is_set()  # the dropped job never ran
    assert not queue.cancel(a.id)  # already final


def test_failures_are_reported_not_raised():
    queue = jobs.JobQueue()

    def user_error(context):
        raise DataError("Class 'dent' has no images.")

    def bug(context):
        raise ZeroDivisionError("division by zero")

    first = queue.submit(user_error, device="cpu")
    second = queue.submit(bug, device="cpu")
    assert second.wait(30)
    assert first.snapshot().state == jobs.FAILED and first.snapshot().error == "Class 'dent' has no images."
    assert second.snapshot().state == jobs.FAILED and "ZeroDivisionError" in second.snapshot().error


def test_progress_snapshots_and_history_are_thread_safe_copies(monkeypatch):
    monkeypatch.setattr(jobs, "MAX_HISTORY_POINTS", 50)
    queue = jobs.JobQueue()
    go, reported = threading.Event(), threading.Event()

    def work(context):
        for step in range(1, 201):
            context.report(Progress(phase="train", epoch=1 + step // 20, epochs=10, step=step, total_steps=200,
                                    loss=1.0 / step, ce=0.5, intra=0.1, inter=0.2, train_accuracy=0.5, lr=0.1,
                                    elapsed=step * 0.01, eta=(200 - step) * 0.01))
        reported.set()
        go.wait(30)

    job = queue.submit(work, device="cpu")
    assert reported.wait(30)
    snap = job.snapshot()
    assert snap.progress.phase == "train" and snap.progress.fraction == 1.0
    assert 0 < len(snap.history) <= 50  # thinned, not unbounded
    assert snap.history[0]["step"] == 1 and snap.history[-1]["step"] <= 200
    go.set()
    assert job.wait(30)
    assert isinstance(snap.history, tuple)


def test_unavailable_weights_are_reported_with_the_way_out(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = jobs.BackboneCache()
    status = cache.check("ViT-B-32:openai", "cpu")
    assert not status.ok and "demo" in status.message
    assert cache.check("no-such-arch:random", "cpu").ok is False


def test_compare_classes():
    result = jobs.compare_classes(["No defect", "scratch", "rust"], ["no defect", "scratch", "dent"])
    assert result["same"] == ["scratch"]
    assert result["case_only"] == [("No defect", "no defect")]
    assert result["only_file"] == ["rust"] and result["only_project"] == ["dent"]
    assert result["usable"]
    assert not jobs.compare_classes(["a"], ["b"])["usable"]


# ----------------------------------------------------------------------- real jobs (tiny CLIP)


@pytest.fixture
def colour_project(tmp_path, colour_task):
    ws = Workspace(tmp_path / "workspace")
    project = ws.create_project("Colours")
    for folder in sorted(colour_task.iterdir()):
        project.add_class(folder.name)
        project.add_image_paths(folder.name, sorted(folder.glob("*.png")))
    return ws, project


def test_a_tuning_job_reports_progress_and_saves_a_run(colour_project, tiny_spec):
    ws, project = colour_project
    jobs.BACKBONES.get(tiny_spec, "cpu")
    queue = jobs.JobQueue()
    request = jobs.TuneRequest(str(ws.root), project.id, tiny_spec, {"method": "dapt", "epochs": 3, "batch_size": 8},
                               shots=4, device="cpu")
    request.validate()
    started = time.perf_counter()
    job = queue.submit(request)
    first_update = first_step = None
    while not job.wait(0.01):
        snap = job.snapshot()
        if first_update is None and snap.progress.phase != "queued":
            first_update = time.perf_counter() - started
        if first_step is None and snap.progress.phase == "train" and snap.progress.step:
            first_step = time.perf_counter() - started
    snap = job.snapshot()
    assert snap.state == jobs.DONE, snap.error
    assert first_update is not None  # the job showed its phases while it ran, not only at the end
    print(f"\nfirst progress update {first_update:.3f} s, first training step {first_step} s after submit")
    [info] = project.runs()
    assert info.id == snap.result["run_id"]
    assert len(snap.history) == 3  # 12 training images, batch 8: one full batch per epoch
    assert snap.label.startswith("tune")


def test_cancelling_a_tuning_job_leaves_the_project_as_it_was(colour_project, tiny_spec):
    ws, project = colour_project
    before = sorted(p.name for p in project.path.rglob("*") if p.is_file())
    queue = jobs.JobQueue()
    job = queue.submit(jobs.TuneRequest(str(ws.root), project.id, tiny_spec,
                                        {"method": "dapt", "epochs": 500, "batch_size": 4}, shots=4, device="cpu"))
    deadline = time.time() + 30
    while job.snapshot().progress.step < 2 and time.time() < deadline:
        time.sleep(0.02)
    asked = time.perf_counter()
    queue.cancel(job.id)
    assert job.wait(10)
    assert time.perf_counter() - asked < 3.0
    assert job.snapshot().state == jobs.CANCELLED
    assert project.runs() == []
    assert sorted(p.name for p in project.path.rglob("*") if p.is_file()) == before


def test_a_job_for_a_project_without_two_classes_fails_with_what_to_fix(tmp_path, tiny_spec):
    ws = Workspace(tmp_path / "workspace")
    project = ws.create_project("Lonely", ["good"])
    request = jobs.TuneRequest(str(ws.root), project.id, tiny_spec, {"method": "dapt"}, shots=4, device="cpu")
    with pytest.raises(DataError) as error:
        request.validate()
    assert error.value.code == "need_two_classes"


def test_evaluating_an_imported_prompt_file_leaves_out_its_training_images(colour_project, tiny_spec):
    ws, project = colour_project
    queue = jobs.JobQueue()
    settings = {"method": "dapt", "epochs": 2, "batch_size": 8}
    tuned = queue.submit(jobs.TuneRequest(str(ws.root), project.id, tiny_spec, settings, shots=4, device="cpu"))
    assert tuned.wait(120) and tuned.snapshot().state == jobs.DONE, tuned.snapshot().error
    run = project.run(tuned.snapshot().result["run_id"])
    data = run.prompt_file.read_bytes()
    project.add_class("purple")  # the file cannot predict it
    evaluation = queue.submit(jobs.EvaluateRequest(str(ws.root), project.id, data, "prompts.safetensors", device="cpu"))
    assert evaluation.wait(120)
    snap = evaluation.snapshot()
    assert snap.state == jobs.DONE, snap.error
    result = snap.result
    assert result["left_out"]["excluded"] == 12  # 4 shots x 3 classes
    assert result["n_test"] == 36 - 12
    assert result["comparison"]["only_project"] == ["purple"]
    assert len(result["rows"]) == 24 and {"name", "true", "predicted"} <= set(result["rows"][0])
    # the same numbers as the run measured on its held-out images
    assert result["accuracy"] == pytest.approx(run.metrics["accuracy"])

    damaged = queue.submit(jobs.EvaluateRequest(str(ws.root), project.id, b"garbage", "x.safetensors", device="cpu"))
    assert damaged.wait(30)
    assert damaged.snapshot().state == jobs.FAILED and "not a DAPT prompt file" in damaged.snapshot().error
