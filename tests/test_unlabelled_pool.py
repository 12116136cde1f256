"""A project's unlabelled pool (dapt_core/studio/unlabelled_pool.py): photos kept once on disk, a ZIP
expanded safely, labelling through the project's intake, skipping, the ranking kept with the photos."""

from __future__ import annotations

import io
import zipfile

import pytest
from conftest import write_colour_task

from dapt_core.studio.unlabelled_pool import POOL_DUPLICATE, UnlabelledPool, upload_files
from dapt_core.studio.workspace import Workspace


@pytest.fixture
def project(tmp_path):
    task = write_colour_task(tmp_path / "labelled", per_class=3, size=32, seed=2)
    project = Workspace(tmp_path / "workspace").create_project("Colours", ["red", "green", "blue"])
    for name in ("red", "green", "blue"):
        project.add_image_paths(name, sorted((task / name).glob("*.png")))
    return project


@pytest.fixture
def shift(tmp_path):
    return write_colour_task(tmp_path / "shift", per_class=4, size=32, seed=1)


def photos_of(folder) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted(folder.rglob("*.png"))]


def test_photos_are_kept_once_and_survive_a_new_handle(project, shift):
    pool = UnlabelledPool(project)
    first = pool.add(photos_of(shift))
    assert len(first.added) == 12 and not first.skipped
    again = pool.add(photos_of(shift)[:2])
    assert not again.added and [s.code for s in again.skipped] == [POOL_DUPLICATE, POOL_DUPLICATE]
    reopened = UnlabelledPool(Workspace(project.workspace.root).project(project.id))  # as after a restart
    assert [p.name for p in reopened.photos()] == [p.name for p in first.added]
    assert all(reopened.image_path(p).is_file() and reopened.thumbnail_path(p.sha256).is_file()
               for p in reopened.photos())
    assert project.counts() == {"red": 3, "green": 3, "blue": 3}  # the project itself is untouched


def test_the_pool_takes_photos_as_the_project_does_picture_only_and_within_the_size_limit(project, monkeypatch):
    # A padded copy of a project photo is still that photo, and an oversized file is skipped with its reason.
    labelled = project.images("red")[0]
    padded = project.image_path(labelled.sha256).read_bytes() + b"\x00" * 5000
    report = UnlabelledPool(project).add([("padded.png", padded)])
    assert not report.added and report.skipped[0].code == "duplicate"
    monkeypatch.setenv("DAPT_MAX_FILE_MB", "1")
    big = UnlabelledPool(project).add([("big.png", padded + b"\x00" * 1_000_000)])
    assert not big.added and big.skipped[0].code == "file_too_big"


def test_a_photo_the_project_holds_is_refused(project):
    labelled = project.images("red")[0]
    report = UnlabelledPool(project).add([("again.png", project.image_path(labelled.sha256).read_bytes())])
    assert not report.added and report.skipped[0].code == "duplicate"


def test_a_zip_is_expanded_and_its_unsafe_members_skipped(project, shift):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in photos_of(shift)[:3]:
            archive.writestr(f"shift/sub/{name}", content)
        archive.writestr("../escape.png", photos_of(shift)[3][1])
        archive.writestr("notes.txt", b"not a photo")
    report = upload_files(UnlabelledPool(project), [("shift.zip", buffer.getvalue())])
    assert len(report.added) == 3
    assert [s.code for s in report.skipped] == ["zip_unsafe_path"]
    assert {p.name for p in report.added} == {name for name, _ in photos_of(shift)[:3]}


def test_labelling_moves_the_photo_into_the_project_and_out_of_the_pool(project, shift):
    pool = UnlabelledPool(project)
    photo = pool.add(photos_of(shift)).added[0]
    report = pool.label(photo.sha256, "green")
    assert [r.sha256 for r in report.added] == [photo.sha256]
    assert any(r.sha256 == photo.sha256 and r.class_name == "green" for r in project.images())
    assert photo.sha256 not in {p.sha256 for p in pool.photos()}
    assert not pool.image_path(photo).exists()
    assert len(pool.photos()) == 11


def test_skipping_hides_a_photo_but_keeps_it(project, shift):
    pool = UnlabelledPool(project)
    photo = pool.add(photos_of(shift)).added[0]
    pool.skip(photo.sha256)
    assert photo.sha256 not in {p.sha256 for p in pool.waiting()}
    assert photo.sha256 in {p.sha256 for p in pool.photos()}


def test_the_ranking_is_kept_and_shrinks_as_photos_are_labelled(project, shift, tiny_backbone):
    pool = UnlabelledPool(project)
    pool.add(photos_of(shift))
    ranking = pool.rank(lambda spec: tiny_backbone, count=4)
    assert ranking["mode"] == "typical" and ranking["run_id"] is None and ranking["photos"] == 12
    assert [pick["rank"] for pick in ranking["picks"]] == [1, 2, 3, 4]
    assert all(pick["kind"] == "typical" for pick in ranking["picks"])
    first = ranking["picks"][0]
    pool.label(first["sha256"], "blue")
    kept = UnlabelledPool(project).ranking()
    assert [pick["sha256"] for pick in kept["picks"]] == [pick["sha256"] for pick in ranking["picks"][1:]]


def test_an_unreadable_index_keeps_the_photos(project, shift):
    pool = UnlabelledPool(project)
    pool.add(photos_of(shift)[:2])
    (pool.path / "pool.json").write_text("{ damaged")
    assert len(UnlabelledPool(project).photos()) == 2


def test_with_a_tuned_run_the_model_s_doubtful_photos_come_first(project, shift, tiny_spec):
    from dapt_core.studio import job_queue, jobs
    from dapt_core.studio.backbone_cache import BACKBONES
    from ui.labelling_view import reason

    job = job_queue.JobQueue().submit(jobs.TuneRequest(str(project.workspace.root), project.id, tiny_spec,
                                                       {"method": "dapt", "epochs": 1, "batch_size": 8}, shots=2,
                                                       make_projection=False))
    assert job.wait(300) and job.snapshot().state == job_queue.DONE, job.snapshot().error
    pool = UnlabelledPool(project)
    pool.add(photos_of(shift))
    asked = []
    ranking = pool.rank(lambda spec: asked.append(spec) or BACKBONES.get(spec, "cpu"), count=3)
    assert asked == [tiny_spec]  # the run's file names its backbone; no default one is loaded
    assert ranking["mode"] == "uncertain" and ranking["run_id"] == project.run_ids()[0]
    for pick in ranking["picks"]:
        assert pick["kind"] in ("unknown", "uncertain")
        words = reason(pick)  # in the app's words (English outside a session)
        assert words.startswith(("the model is unsure between '", "the model's least sure answer in a group of",
                                 "looks like none of the classes")), words
        assert pick["details"]["predicted"] in words
