"""The workspace on disk: projects, classes, content-addressed images, ZIP intake, runs, damage."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dapt_core.errors import DataError
from dapt_core.studio.storage import MANIFEST, ManifestDamaged, WorkspaceError, clean_display_name
from dapt_core.studio.workspace import Project, Workspace


def png_bytes(colour=(200, 40, 40), size=24, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path / "workspace")


@pytest.fixture
def project(ws) -> Project:
    project = ws.create_project("Bracket line 3", ["good", "scratch"])
    return project


def test_workspace_root_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DAPT_WORKSPACE", str(tmp_path / "elsewhere"))
    assert Workspace().root == tmp_path / "elsewhere"
    assert (tmp_path / "elsewhere" / "projects").is_dir()


def test_create_rename_list_delete_projects(ws):
    first = ws.create_project("Line 1")
    second = ws.create_project("ライン 2")  # a name without ASCII still gets a folder id
    assert {info.name for info in ws.list_projects()} == {"Line 1", "ライン 2"}
    assert second.id and second.path.is_dir()
    with pytest.raises(WorkspaceError) as taken:
        ws.create_project("line 1")
    assert taken.value.code == "project_exists"
    first.rename("Line one")
    assert ws.project(first.id).name == "Line one"
    ws.delete_project(first.id)
    assert [info.name for info in ws.list_projects()] == ["ライン 2"]
    with pytest.raises(WorkspaceError):
        ws.project(first.id)
    with pytest.raises(WorkspaceError):
        ws.project("../../etc")


def test_classes_add_rename_delete(project):
    assert project.classes == ["good", "scratch"]
    assert project.add_class("  no   defect ") == "no defect"
    with pytest.raises(WorkspaceError) as taken:
        project.add_class("Scratch")
    assert taken.value.code == "class_exists"
    with pytest.raises(WorkspaceError):
        project.add_class("   ")
    project.add_images("scratch", [("a.png", png_bytes(seed=1))])
    project.rename_class("scratch", "deep scratch")
    assert project.classes == ["good", "deep scratch", "no defect"]
    assert project.images("deep scratch")[0].name == "a.png"
    assert project.delete_class("deep scratch") == 1
    assert project.classes == ["good", "no defect"]
    assert project.images() == []


def test_upload_keeps_good_files_and_lists_the_others_with_reasons(project):
    good = png_bytes(seed=1)
    report = project.add_images("good", [
        ("ok.png", good),
        ("notes.txt", b"hello there, not a picture"),
        ("empty.jpg", b""),
        ("truncated.png", good[: len(good) // 2]),
        ("copy-of-ok.png", good),
        ("../../../etc/passwd.png", png_bytes(seed=2)),
    ])
    assert [r.name for r in report.added] == ["ok.png", "passwd.png"]
    reasons = {s.name: s for s in report.skipped}
    assert "text" in reasons["notes.txt"].reason
    assert reasons["empty.jpg"].reason == "empty file"
    assert "truncated" in reasons["truncated.png"].reason or "corrupt" in reasons["truncated.png"].reason
    assert reasons["copy-of-ok.png"].code == "duplicate" and reasons["copy-of-ok.png"].params["other"] == "ok.png"
    assert project.counts() == {"good": 2, "scratch": 0}
    # stored by content hash, never under the uploaded name
    stored = sorted(p.name for p in project.images_dir.iterdir())
    assert all(len(Path(name).stem) == 64 for name in stored)
    assert not any("passwd" in name for name in stored)
    assert not (project.workspace.root.parent / "etc").exists()
    # the last intake is remembered for a browser refresh
    remembered = project.last_intake()
    assert len(remembered.added) == 2 and len(remembered.skipped) == 4


def test_display_names_are_sanitised():
    assert clean_display_name("C:\\Users\\x\\photo 1.jpg") == "photo 1.jpg"
    assert clean_display_name("a/b/../c.png") == "c.png"
    assert clean_display_name("bad\x00name\n.png") == "badname.png"
    assert clean_display_name("") == "unnamed"
    assert len(clean_display_name("x" * 500 + ".png")) <= 200


def test_move_and_remove_images(project):
    report = project.add_images("good", [(f"{i}.png", png_bytes(seed=i)) for i in range(3)])
    shas = [r.sha256 for r in report.added]
    assert project.move_images(shas[:2], "scratch") == 2
    assert project.counts() == {"good": 1, "scratch": 2}
    with pytest.raises(WorkspaceError):
        project.move_images(shas, "missing")
    assert project.remove_images([shas[0]]) == 1
    assert project.counts() == {"good": 1, "scratch": 1}
    assert not list(project.images_dir.glob(shas[0] + ".*"))  # no run shows it: the file goes


def _zip(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, target)
    return buffer.getvalue()


def test_zip_import_creates_classes_and_refuses_unsafe_entries(project, tmp_path):
    data = _zip({
        "photos/no_defect/a.png": png_bytes(seed=1),
        "photos/no_defect/b.png": png_bytes(seed=2),
        "photos/scratch/c.png": png_bytes(seed=3),
        "photos/scratch/readme.txt": b"notes",
        "photos/scratch/broken.jpg": b"\xff\xd8\xff garbage",
        "__MACOSX/photos/._a.png": b"junk",
        "../evil.png": png_bytes(seed=4),
        "/abs/evil2.png": png_bytes(seed=5),
    }, links={"photos/scratch/link.png": "/etc/passwd"})
    report = project.import_zip(data, "photos.zip")
    assert project.counts() == {"good": 0, "scratch": 1, "no defect": 2}
    assert report.created_classes == ["no defect"]
    codes = {s.name: s.code for s in report.skipped}
    assert codes["../evil.png"] == "zip_unsafe_path"
    assert codes["/abs/evil2.png"] == "zip_unsafe_path"
    assert codes["photos/scratch/link.png"] == "zip_link"
    assert any(name.endswith("readme.txt") for name in codes)
    assert any(name.endswith("broken.jpg") for name in codes)
    assert not (tmp_path / "evil.png").exists()
    with pytest.raises(WorkspaceError) as bad:
        project.import_zip(b"not a zip", "x.zip")
    assert bad.value.code == "zip_bad"


def test_split_says_what_to_fix(ws):
    lonely = ws.create_project("Lonely", ["good"])
    with pytest.raises(DataError) as one:
        lonely.split(4, 1)
    assert one.value.code == "need_two_classes"
    empty = ws.create_project("Empty class", ["good", "scratch"])
    empty.add_images("good", [("a.png", png_bytes())])
    with pytest.raises(DataError) as none:
        empty.split(4, 1)
    assert none.value.code == "empty_class" and none.value.params["name"] == "scratch"


def test_split_always_leaves_test_pictures_in_every_class(project):
    project.add_images("good", [(f"g{i}.png", png_bytes((30, 200, 30), seed=i)) for i in range(9)])
    project.add_images("scratch", [(f"s{i}.png", png_bytes((200, 30, 30), seed=i)) for i in range(6)])
    assert project.shot_capacity() == {"good": 4, "scratch": 3}
    split = project.split(16, 1)  # more shots than either class has: at most half of each trains
    per_class = {(split.classnames[i.label], part) for part, items in (("train", split.train), ("test", split.test))
                 for i in items}
    assert per_class == {("good", "train"), ("good", "test"), ("scratch", "train"), ("scratch", "test")}
    assert len(split.train) == 4 + 3 and len(split.test) == 5 + 3
    assert any("scratch" in note and "kept for testing" in note for note in split.notes)
    small = project.split(2, 1)
    assert len(small.train) == 4 and len(small.test) == 11
    assert project.split(2, 7).train != small.train  # the seed draws


def test_a_class_of_one_picture_cannot_train_and_test(project):
    project.add_images("good", [(f"g{i}.png", png_bytes((30, 200, 30), seed=i)) for i in range(3)])
    project.add_images("scratch", [("s.png", png_bytes((200, 30, 30)))])
    with pytest.raises(WorkspaceError) as error:
        project.split(1, 1)
    assert error.value.code == "class_too_small" and error.value.params["name"] == "scratch"


def _train_test_folder(root: Path, per_class: dict[str, tuple[int, int]]) -> Path:
    """root/train/<class>/NNN.png and root/test/<class>/NNN.png of noisy solid colours."""
    colours = {"red": (220, 30, 30), "green": (30, 220, 30), "blue": (30, 30, 220)}
    for name, (n_train, n_test) in per_class.items():
        for part, count, offset in (("train", n_train, 0), ("test", n_test, 100)):
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                (folder / f"{i:03d}.png").write_bytes(png_bytes(colours[name], seed=offset + i))
    return root


def _zip_folder(root: Path) -> bytes:
    return _zip({str(path.relative_to(root.parent)): path.read_bytes() for path in sorted(root.rglob("*.png"))})


def test_a_zip_with_train_and_test_keeps_that_split_as_dapt_tune_reads_it(project, tmp_path):
    from dapt_core.data.folders import load_split
    from dapt_core.data.images import sha256_of

    folder = _train_test_folder(tmp_path / "photos", {"red": (5, 3), "green": (6, 2)})
    report = project.import_zip(_zip_folder(folder), "photos.zip")
    assert not report.skipped and set(report.created_classes) == {"red", "green"}
    assert {(r.class_name, r.part) for r in project.images()} == {("red", "train"), ("red", "test"),
                                                                   ("green", "train"), ("green", "test")}
    assert project.shot_capacity() == {"good": 0, "scratch": 0, "red": 5, "green": 6}
    project.delete_class("good")
    project.delete_class("scratch")
    for shots in (3, 16):
        ours, cli = project.split(shots, 4), load_split(folder, shots, 4)
        assert ours.classnames == cli.classnames == ["green", "red"]
        for part in ("train", "test"):
            assert ([(i.path.stem, i.label) for i in getattr(ours, part)]
                    == [(sha256_of(i.path), i.label) for i in getattr(cli, part)]), (shots, part)
    # the test/ pictures are the held-out set: nothing of the training pictures is kept back
    assert not [note for note in project.split(16, 4).notes if "kept for testing" in note]


def test_the_demo_project_keeps_the_demo_tasks_split(ws, monkeypatch):
    from dapt_core.data.folders import load_split
    from dapt_core.data.images import sha256_of
    from dapt_core.demo import demo_task

    monkeypatch.setattr(demo_task, "TRAIN_PER_CLASS", 4)  # the real task, fewer pictures
    monkeypatch.setattr(demo_task, "TEST_PER_CLASS", 3)
    project = ws.create_demo_project("Demo")
    info = demo_task.write_demo_task(ws.root / "demo-folder")
    ours, cli = project.split(16, 1), load_split(info["out_dir"], 16, 1)
    assert ours.classnames == cli.classnames
    assert [i.path.stem for i in ours.test] == [sha256_of(i.path) for i in cli.test]
    assert [i.path.stem for i in ours.train] == [sha256_of(i.path) for i in cli.train]
    assert {r.name for r in project.images() if r.part == "test"} == {f"test-{i:03d}.png" for i in range(3)}


def test_a_demo_project_stopped_half_way_leaves_nothing(ws, monkeypatch):
    """In the app the progress callback is where Streamlit stops the page when the person goes to another one,
    with its own BaseException (not an Exception): the half-made project must go, as after a full disk."""
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    from dapt_core.demo import demo_task

    monkeypatch.setattr(demo_task, "TRAIN_PER_CLASS", 4)
    monkeypatch.setattr(demo_task, "TEST_PER_CLASS", 3)

    def left_the_page(done: int, total: int) -> None:
        if done == total // 2:
            raise StopException()

    with pytest.raises(StopException):
        ws.create_demo_project("Demo", progress=left_the_page)
    assert ws.list_projects() == []
    assert [p.name for p in ws.projects_dir.iterdir() if not p.name.startswith(".")] == []


def test_damaged_manifest_is_reported_never_replaced(ws, project):
    project.add_class("dent")  # leaves a backup of the previous manifest
    path = project.path / MANIFEST
    path.write_text('{"format": "dapt-studio-project", "name": "x", "classes": [', encoding="utf-8")
    damaged = path.read_bytes()
    with pytest.raises(ManifestDamaged) as error:
        project.manifest()
    assert "not valid JSON" in str(error.value) and error.value.params["has_backup"]
    with pytest.raises(ManifestDamaged):
        project.add_class("rust")
    with pytest.raises(ManifestDamaged):
        project.add_images("good", [("a.png", png_bytes())])
    assert path.read_bytes() == damaged  # untouched
    listed = {info.id: info for info in ws.list_projects()}
    assert listed[project.id].error is not None
    project.restore_backup()
    assert project.classes == ["good", "scratch"]
    assert list(project.path.glob("project.damaged-*.json"))  # the damaged copy is kept


def test_manifest_with_wrong_content_is_damaged(project):
    data = json.loads((project.path / MANIFEST).read_text())
    data["images"] = [{"sha256": "0" * 64, "name": "a.png", "class": "nope"}]
    (project.path / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ManifestDamaged) as error:
        project.manifest()
    assert "nope" in str(error.value)


def test_a_failed_manifest_write_leaves_the_old_manifest_whole(project, monkeypatch):
    before = (project.path / MANIFEST).read_bytes()
    real_replace = os.replace
    attempts = []

    def replace_failing_on_the_manifest(src, dst):
        # The backup copy goes through; the write of the manifest itself fails, as on a full disk.
        attempts.append(Path(dst).name)
        if Path(dst).name == MANIFEST:
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_failing_on_the_manifest)
    with pytest.raises(OSError, match="disk full"):
        project.add_class("dent")
    monkeypatch.undo()
    assert MANIFEST in attempts  # the write did reach the manifest
    assert (project.path / MANIFEST).read_bytes() == before
    assert "dent" not in Workspace(project.workspace.root).project(project.id).classes
    assert not [p for p in project.path.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".tmp")]


def test_a_run_is_saved_whole_and_survives_a_new_workspace_object(ws, tiny_backbone):
    from dapt_core.engine.experiment import run_experiment
    from dapt_core.engine.methods import TuningConfig

    project = ws.create_project("Colours", ["red", "green"])
    project.add_images("red", [(f"r{i}.png", png_bytes((220, 30, 30), seed=i)) for i in range(4)])
    project.add_images("green", [(f"g{i}.png", png_bytes((30, 220, 30), seed=i)) for i in range(4)])
    split = project.split(2, 1)
    result = run_experiment(tiny_backbone, split, TuningConfig(method="dapt", epochs=1, batch_size=4), shots=2)
    run = project.save_run(result, request={"backbone": tiny_backbone.spec})
    assert sorted(p.name for p in run.path.iterdir()) == ["embeddings.safetensors", "prompts.safetensors", "run.json"]
    assert not list(project.runs_dir.glob(".incoming-*"))

    reopened = Workspace(ws.root).project(project.id)  # as after a server restart
    [info] = reopened.runs()
    assert info.id == run.id and info.method == "dapt" and info.n_test == 4
    saved = reopened.run(run.id)
    emb = saved.embeddings()
    assert emb["before_features"].shape == emb["after_features"].shape == (4, tiny_backbone.embed_dim)
    assert emb["before_text"].shape == (2, tiny_backbone.embed_dim)
    assert [row["name"] for row in saved.data["test"]][0].endswith(".png")
    assert {row["class"] for row in saved.data["train"]} == {"red", "green"}

    from dapt_core.engine.prompt_file import load

    assert load(saved.prompt_file).classnames == ["green", "red"]
    # removing an image a run shows keeps its file for that run's gallery
    sha = saved.data["test"][0]["sha256"]
    project.remove_images([sha])
    assert list(project.images_dir.glob(sha + ".*"))
    reopened.delete_run(run.id)
    assert reopened.runs() == []
    assert not list(project.images_dir.glob(sha + ".*"))


def test_a_run_cut_short_by_a_server_restart_is_reported(project):
    project.mark_running("abc123", {"backbone": "demo", "shots": 16, "settings": {"method": "dapt"}})
    assert project.interrupted_runs() == []  # this process is still running it
    marker = project.runs_dir / ".running-abc123.json"
    data = json.loads(marker.read_text())
    data["process"] = "an-earlier-server"
    marker.write_text(json.dumps(data))
    [lost] = project.interrupted_runs()
    assert lost["backbone"] == "demo" and lost["job_id"] == "abc123"
    project.clear_running("../../project")  # not a job id: ignored
    assert (project.path / "project.json").exists()
    project.clear_running("abc123")
    assert project.interrupted_runs() == []


def test_the_apps_tuning_job_gives_the_command_lines_numbers_on_a_train_test_project(ws, tmp_path, tiny_spec):
    from dapt_core.data.folders import load_split
    from dapt_core.data.images import sha256_of
    from dapt_core.engine.experiment import run_experiment
    from dapt_core.studio import backbone_cache, job_queue, jobs

    folder = _train_test_folder(tmp_path / "photos", {"red": (4, 3), "green": (4, 3), "blue": (4, 2)})
    project = ws.create_project("Imported")
    project.import_zip(_zip_folder(folder), "photos.zip")
    settings = {"method": "dapt", "epochs": 2, "batch_size": 4, "seed": 3}
    job = job_queue.JobQueue().submit(jobs.TuneRequest(str(ws.root), project.id, tiny_spec, settings, shots=2,
                                                  device="cpu", make_projection=False))
    assert job.wait(120)
    snap = job.snapshot()
    assert snap.state == job_queue.DONE, snap.error
    run = project.run(snap.result["run_id"])

    # `dapt tune photos --shots 2 --seed 3 --epochs 2`, as cli.cmd_tune does it
    cli_split = load_split(folder, 2, 3)
    cli = run_experiment(backbone_cache.BACKBONES.get(tiny_spec, "cpu"), cli_split, jobs.TuneRequest(
        "", "", tiny_spec, settings).config(), shots=2).metrics()
    assert [row["sha256"] for row in run.data["test"]] == [sha256_of(i.path) for i in cli_split.test]
    assert sorted(row["sha256"] for row in run.data["train"]) == sorted(sha256_of(i.path) for i in cli_split.train)
    for key in ("accuracy", "zero_shot_accuracy", "n_test", "per_class", "confusion"):
        assert run.metrics[key] == cli[key], key
    assert run.metrics["history"][-1]["loss"] == pytest.approx(cli["history"][-1]["loss"], rel=1e-5)


@pytest.mark.parametrize("method", ["coop", "zeroshot"])
def test_a_run_without_a_visual_prompt_is_saved_too(ws, tiny_backbone, method):
    """Its tuned image features are the frozen ones (one tensor, two names in the run's embeddings): CoOp,
    zero-shot, and every run the collapse safeguard replaced."""
    from dapt_core.engine.experiment import run_experiment
    from dapt_core.engine.methods import TuningConfig

    project = ws.create_project("Colours", ["red", "green"])
    project.add_images("red", [(f"r{i}.png", png_bytes((220, 30, 30), seed=i)) for i in range(4)])
    project.add_images("green", [(f"g{i}.png", png_bytes((30, 220, 30), seed=i)) for i in range(4)])
    result = run_experiment(tiny_backbone, project.split(2, 1), TuningConfig(method=method, epochs=1, batch_size=4),
                            shots=2)
    run = project.save_run(result, request={"backbone": tiny_backbone.spec})
    emb = project.run(run.id).embeddings()
    assert (emb["before_features"] == emb["after_features"]).all()
    assert [info.method for info in project.runs()] == [method]
