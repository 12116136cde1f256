"""Real jobs with a tiny CLIP (studio/jobs.py): tuning, cancelling, evaluating an imported prompt file."""

from __future__ import annotations

import pytest

from dapt_core.engine.progress import Phase
from dapt_core.errors import DataError
from dapt_core.studio import jobs
from dapt_core.studio.backbone_cache import BACKBONES
from dapt_core.studio.job_queue import CANCELLED, DONE, FAILED, JobKind, JobQueue
from dapt_core.studio.workspace import Workspace

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
    BACKBONES.get(tiny_spec, "cpu")
    queue = JobQueue()
    request = jobs.TuneRequest(str(ws.root), project.id, tiny_spec, {"method": "dapt", "epochs": 3, "batch_size": 8},
                               shots=4, device="cpu")
    request.validate()
    job = queue.submit(request)
    phases = []  # the phases a page polling the job saw while it ran, and whether training showed steps
    while not job.wait(0.01):
        snap = job.snapshot()
        if not phases or phases[-1] != snap.progress.phase:
            phases.append(snap.progress.phase)
        if snap.progress.phase == Phase.TRAIN and snap.progress.step:
            phases.append("train step")
    snap = job.snapshot()
    assert snap.state == DONE, snap.error
    assert "train step" in phases, phases  # the job showed its training steps while it ran, not only at the end
    shown = [phase for phase in phases if phase in Phase.ALL]
    assert shown == sorted(shown, key=Phase.ALL.index), phases  # in the order a run goes through them
    [info] = project.runs()
    assert info.id == snap.result["run_id"]
    assert len(snap.history) == 3  # 12 training images, batch 8: one full batch per epoch
    assert snap.kind == JobKind.TUNE and snap.label == "tune:dapt"


def test_cancelling_a_tuning_job_leaves_the_project_as_it_was(colour_project, tiny_spec):
    ws, project = colour_project
    before = sorted(p.name for p in project.path.rglob("*") if p.is_file())
    queue = JobQueue()
    job = queue.submit(jobs.TuneRequest(str(ws.root), project.id, tiny_spec,
                                        {"method": "dapt", "epochs": 500, "batch_size": 4}, shots=4, device="cpu"))
    while job.snapshot().progress.step < 2 and not job.wait(0.02):
        pass
    at_cancel = job.snapshot().progress.step
    queue.cancel(job.id)
    assert job.wait(60)
    # The engine checks before every step: the run stops at its next step, not at the end of an epoch.
    assert job.snapshot().progress.step <= at_cancel + 1
    assert job.snapshot().state == CANCELLED
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
    queue = JobQueue()
    settings = {"method": "dapt", "epochs": 2, "batch_size": 8}
    tuned = queue.submit(jobs.TuneRequest(str(ws.root), project.id, tiny_spec, settings, shots=4, device="cpu"))
    assert tuned.wait(120) and tuned.snapshot().state == DONE, tuned.snapshot().error
    run = project.run(tuned.snapshot().result["run_id"])
    data = run.prompt_file.read_bytes()
    project.add_class("purple")  # the file cannot predict it
    evaluation = queue.submit(jobs.EvaluateRequest(str(ws.root), project.id, data, "prompts.safetensors", device="cpu"))
    assert evaluation.wait(120)
    snap = evaluation.snapshot()
    assert snap.state == DONE, snap.error
    result = snap.result
    assert result["left_out"]["excluded"] == 12  # 4 shots x 3 classes
    assert result["n_test"] == 36 - 12
    assert result["comparison"]["only_project"] == ["purple"]
    assert len(result["rows"]) == 24 and {"name", "true", "predicted"} <= set(result["rows"][0])
    # the same numbers as the run measured on its held-out images
    assert result["accuracy"] == pytest.approx(run.metrics["accuracy"])

    damaged = queue.submit(jobs.EvaluateRequest(str(ws.root), project.id, b"garbage", "x.safetensors", device="cpu"))
    assert damaged.wait(30)
    assert damaged.snapshot().state == FAILED and "not a DAPT prompt file" in damaged.snapshot().error
