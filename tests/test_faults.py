"""Faults made for real, not mocked: a small filesystem that fills up (tmpfs), a workspace remounted
read-only, and a process using the library killed with SIGKILL half-way through a change. After each, every
project must be as it was (or as the finished change left it), the user told what happened in words without
server paths, and the next start's sweep (dapt_core/studio/recovery.py) must remove what was left, saying so.

Mounting needs root (CAP_SYS_ADMIN); where it is not permitted those tests are skipped, saying so.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import zip_of
from PIL import Image

from dapt_core.studio.recovery import recover
from dapt_core.studio.storage import MANIFEST, WorkspaceError
from dapt_core.studio.unlabelled_pool import UnlabelledPool
from dapt_core.studio.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent


def noise_png(seed: int, size: int = 150) -> bytes:
    """About 67 kB of incompressible PNG at 150 x 150."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` by relative path, with the sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs, unmounted afterwards whatever happens."""
    point = tmp_path / "disk"
    point.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=3m", "tmpfs", str(point))
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        pytest.skip(f"mounting a tmpfs is not permitted here ({error}); the fault tests need root")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill `disk` until at most `leave` bytes are free (ENOSPC for anything larger)."""
    filler = disk / "filler"
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    with open(filler, "wb") as out:
        try:
            out.write(b"\x00" * max(0, free - leave))
            out.flush()
        except OSError:
            pass
    return filler


def assert_told_without_paths(error: WorkspaceError, code: str) -> None:
    assert error.code == code
    text = str(error)
    assert "/" not in text and "Errno" not in text, text


def project_with_photos(root: Path, n: int = 3):
    workspace = Workspace(root)
    project = workspace.create_project("Line 3", ["good", "scratch"])
    project.add_images("good", [(f"g{i}.png", noise_png(i)) for i in range(n)])
    return workspace, project


# ------------------------------------------------------------------ a full disk


def test_a_disk_filling_up_during_an_upload_keeps_the_project_as_it_was(small_disk):
    workspace, project = project_with_photos(small_disk / "ws")
    before = tree(project.path)
    fill(small_disk, leave=150_000)  # room for two of the five photos
    with pytest.raises(WorkspaceError) as full:
        project.add_images("scratch", [(f"s{i}.png", noise_png(100 + i)) for i in range(5)])
    assert_told_without_paths(full.value, "disk_full")
    assert tree(project.path) == before  # earlier photos and the manifest untouched, nothing half-stored
    assert not recover(workspace).anything  # nothing left to sweep
    (small_disk / "filler").unlink()
    assert len(project.add_images("scratch", [("s.png", noise_png(200))]).added) == 1


def test_a_disk_filling_up_during_a_zip_import_adds_nothing(small_disk):
    workspace, project = project_with_photos(small_disk / "ws")
    before = tree(project.path)
    archive = zip_of({f"good/z{i}.png": noise_png(300 + i) for i in range(8)}
                     | {f"new class/n{i}.png": noise_png(400 + i) for i in range(8)}, zipfile.ZIP_STORED)
    fill(small_disk, leave=400_000)
    with pytest.raises(WorkspaceError) as full:
        project.import_zip(archive, "line3.zip")
    assert_told_without_paths(full.value, "disk_full")
    assert tree(project.path) == before and project.classes == ["good", "scratch"]
    assert list((workspace.root / "tmp").iterdir()) == []  # the expanded archive is gone too


def test_a_full_disk_refuses_a_new_project_without_leaving_half_of_one(small_disk):
    workspace, _ = project_with_photos(small_disk / "ws")
    fill(small_disk)
    with pytest.raises(WorkspaceError) as full:
        workspace.create_project("Line 4")
    assert_told_without_paths(full.value, "disk_full")
    assert [info.name for info in workspace.list_projects()] == ["Line 3"]
    assert sorted(p.name for p in workspace.projects_dir.iterdir()) == [workspace.list_projects()[0].id]


def test_a_full_disk_when_a_run_is_saved_keeps_no_half_run(small_disk, tiny_backbone):
    from dapt_core.engine.experiment import run_experiment
    from dapt_core.engine.methods import TuningConfig

    workspace = Workspace(small_disk / "ws")
    project = workspace.create_project("Colours", ["red", "blue"])
    for name, seed in (("red", 0), ("blue", 50)):
        project.add_images(name, [(f"{name}{i}.png", noise_png(seed + i, size=32)) for i in range(6)])
    result = run_experiment(tiny_backbone, project.split(2, 1), TuningConfig(method="dapt", epochs=1, batch_size=4))
    before = tree(project.path)
    fill(small_disk)
    with pytest.raises(WorkspaceError) as full:
        project.save_run(result)
    assert_told_without_paths(full.value, "disk_full")
    assert project.run_ids() == [] and tree(project.path) == before
    (small_disk / "filler").unlink()
    saved = project.save_run(result)
    assert project.run_ids() == [saved.id]


def test_a_tuning_job_on_a_full_disk_fails_with_the_plain_message(small_disk, tiny_spec):
    from dapt_core.studio import job_queue, jobs

    workspace = Workspace(small_disk / "ws")
    project = workspace.create_project("Colours", ["red", "blue"])
    for name, seed in (("red", 0), ("blue", 50)):
        project.add_images(name, [(f"{name}{i}.png", noise_png(seed + i, size=32)) for i in range(6)])
    before = tree(project.path)
    fill(small_disk)
    job = job_queue.get_queue().submit(jobs.TuneRequest(str(workspace.root), project.id, tiny_spec,
                                                        {"method": "dapt", "epochs": 1, "batch_size": 4}, shots=2,
                                                        device="cpu", make_projection=False))
    job.wait(120)
    snap = job.snapshot()
    assert snap.state == job_queue.FAILED and snap.error_code == "disk_full", snap.error
    assert "Unexpected" not in snap.error and "/" not in snap.error
    assert tree(project.path) == before


# ------------------------------------------------------------------ a read-only workspace


def test_a_read_only_workspace_refuses_every_change_plainly_and_changes_nothing(small_disk):
    workspace, project = project_with_photos(small_disk / "ws")
    other = workspace.create_project("Line 4")
    before = tree(workspace.root)
    _mount("-o", "remount,ro", str(small_disk))
    try:
        changes = {
            "upload": lambda: project.add_images("scratch", [("s.png", noise_png(7))]),
            "zip import": lambda: project.import_zip(zip_of({"good/z.png": noise_png(8)}, zipfile.ZIP_STORED),
                                                     "z.zip"),
            "new project": lambda: workspace.create_project("Line 5"),
            "rename": lambda: project.rename("Line three"),
            "relabel": lambda: project.move_images([project.images()[0].sha256], "scratch"),
            "delete project": lambda: workspace.delete_project(other.id),
        }
        for what, change in changes.items():
            with pytest.raises(WorkspaceError) as refused:
                change()
            assert_told_without_paths(refused.value, "read_only"), what
        assert tree(workspace.root) == before
        assert not recover(workspace).anything  # and the sweep does not fail on a read-only disk
    finally:
        _mount("-o", "remount,rw", str(small_disk))


# ------------------------------------------------------------------ a process killed half-way (SIGKILL)


def start_child(script: str, workspace_root: Path) -> subprocess.Popen:
    """A Python process that uses the library on `workspace_root` and prints a line after each step."""
    code = "import sys\nfrom dapt_core.studio.workspace import Workspace\n" \
           f"ws = Workspace({str(workspace_root)!r})\n" + textwrap.dedent(script)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def kill_when(child: subprocess.Popen, ready, timeout: float = 60.0) -> None:
    """SIGKILL `child` as soon as `ready()` is true (polled every millisecond)."""
    deadline = time.time() + timeout
    while not ready():
        assert child.poll() is None, "the child finished before it could be killed"
        assert time.time() < deadline, "the moment to kill never came"
        time.sleep(0.001)
    child.send_signal(signal.SIGKILL)
    child.wait()


def consistent(project) -> dict:
    """The manifest (it must read) and the check that every photo it lists is stored whole."""
    manifest = project.manifest()
    for item in manifest["images"]:
        path = project.image_path(item["sha256"])
        assert hashlib.sha256(path.read_bytes()).hexdigest() == item["sha256"]
    return manifest


def stored_but_unlisted(project) -> set[str]:
    listed = {item["sha256"] for item in project.manifest()["images"]}
    return {p.name for p in project.images_dir.iterdir() if p.name.split(".")[0] not in listed}


def test_a_zip_import_killed_half_way_shows_nothing_of_it_and_the_sweep_says_so(tmp_path):
    workspace, project = project_with_photos(tmp_path / "ws")
    earlier = tree(project.images_dir)
    archive = tmp_path / "big.zip"
    archive.write_bytes(zip_of({f"good/z{i:03d}.png": noise_png(1000 + i, size=96) for i in range(400)},
                               zipfile.ZIP_STORED))
    child = start_child(f"""
        project = ws.project({project.id!r})
        project.import_zip(open({str(archive)!r}, "rb").read(), "big.zip")
        print("done", flush=True)
    """, workspace.root)
    kill_when(child, lambda: len(list(project.images_dir.iterdir())) >= len(earlier) + 20)
    manifest = consistent(project)
    assert len(manifest["images"]) == 3  # nothing of the archive shows
    assert tree(project.images_dir).items() >= earlier.items()  # earlier photos intact
    assert stored_but_unlisted(project)
    found = recover(workspace)
    assert found.orphans >= 20 and found.temporary_folders == 1 and found.freed_bytes > 0
    assert stored_but_unlisted(project) == set() and list((workspace.root / "tmp").iterdir()) == []
    assert tree(project.images_dir) == earlier
    assert not recover(workspace).anything  # a second start has nothing to say


def test_an_unlabelled_zip_killed_half_way_is_swept_and_the_pool_keeps_what_it_listed(tmp_path):
    workspace, project = project_with_photos(tmp_path / "ws")
    pool = UnlabelledPool(project)
    pool.add([("shift-a.png", noise_png(7))])
    listed = tree(pool.path)
    archive = tmp_path / "shift.zip"
    archive.write_bytes(zip_of({f"cam1/u{i:03d}.png": noise_png(2000 + i, size=96) for i in range(400)},
                               zipfile.ZIP_STORED))
    child = start_child(f"""
        from dapt_core.studio.unlabelled_pool import UnlabelledPool
        UnlabelledPool(ws.project({project.id!r})).add_zip(open({str(archive)!r}, "rb").read(), "shift.zip")
        print("done", flush=True)
    """, workspace.root)
    kill_when(child, lambda: len(list(pool.images_dir.iterdir())) >= 20)
    assert [p.name for p in pool.photos()] == ["shift-a.png"]  # the index lists nothing of the archive
    found = recover(workspace)
    # the archive was being expanded in the workspace's tmp/, so the sweep sees it (not in the system's /tmp)
    assert found.temporary_folders == 1 and found.orphans >= 19 and found.freed_bytes > 0
    assert tree(pool.path) == listed and list((workspace.root / "tmp").iterdir()) == []
    assert len(pool.add_zip(archive.read_bytes(), "shift.zip").added) == 400  # the same upload again, whole
    assert not recover(workspace).anything


def test_a_relabel_killed_half_way_leaves_one_label_or_the_other(tmp_path):
    workspace, project = project_with_photos(tmp_path / "ws", n=40)
    child = start_child(f"""
        project = ws.project({project.id!r})
        names = ["good", "fine"]
        for step in range(100000):
            project.rename_class(names[step % 2], names[(step + 1) % 2])
            shas = [r.sha256 for r in project.images()][: step % 40]
            project.move_images(shas, "scratch")
            project.move_images(shas, names[(step + 1) % 2])
            print(step, flush=True)
    """, workspace.root)
    child.stdout.readline()
    time.sleep(0.3)
    child.send_signal(signal.SIGKILL)
    child.wait()
    manifest = consistent(project)
    assert len(manifest["images"]) == 40
    assert set(manifest["classes"]) in ({"good", "scratch"}, {"fine", "scratch"})
    recover(workspace)
    assert not list(project.path.rglob("*.tmp"))


def test_a_project_rename_reported_done_survives_a_kill(tmp_path):
    workspace, project = project_with_photos(tmp_path / "ws")
    child = start_child(f"""
        project = ws.project({project.id!r})
        for step in range(100000):
            project.rename(f"Line 3 v{{step}}")
            print(step, flush=True)
    """, workspace.root)
    done = -1
    for _ in range(30):
        done = int(child.stdout.readline())
    child.send_signal(signal.SIGKILL)
    child.wait()
    name = consistent(project)["name"]
    assert int(name.rsplit("v", 1)[1]) >= done  # the last rename reported done, or one after it


def test_a_project_delete_killed_half_way_is_finished_by_the_sweep(tmp_path):
    workspace, project = project_with_photos(tmp_path / "ws")
    keep, _ = workspace.create_project("Line 4"), None
    bulk = project.path / "runs" / "20260101-000000-dapt-abcd"
    bulk.mkdir(parents=True)
    for i in range(20000):  # many files, so that the deletion takes long enough to be interrupted
        (bulk / f"{i}.bin").write_bytes(b"x" * 64)
    (bulk / "run.json").write_text(json.dumps({"format": "x"}))
    child = start_child(f"""
        ws.delete_project({project.id!r})
        print("done", flush=True)
    """, workspace.root)
    kill_when(child, lambda: any(p.name.startswith(".deleted-") for p in workspace.projects_dir.iterdir()))
    assert [info.name for info in workspace.list_projects()] == ["Line 4"]  # no half project shows
    found = recover(workspace)
    assert found.unfinished_projects == 1
    assert sorted(p.name for p in workspace.projects_dir.iterdir()) == [keep.id]
    assert (keep.path / MANIFEST).exists()


# ------------------------------------------------------------------ what the app shows


def _app(workspace_root: Path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DAPT_WORKSPACE", str(workspace_root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_app_says_once_what_the_sweep_after_a_crash_removed(tmp_path, monkeypatch):
    workspace, project = project_with_photos(tmp_path / "ws")
    (workspace.projects_dir / ".deleted-old-project-1a2b" / "images").mkdir(parents=True)
    (workspace.root / "tmp" / "dapt-zip-x1" / "archive").mkdir(parents=True)
    (project.images_dir / ("0" * 64 + ".png")).write_bytes(noise_png(5))
    at = _app(workspace.root, monkeypatch)
    [told] = [str(i.value) for i in at.info if "unexpected stop" in str(i.value)]
    assert told.startswith("Recovered after an unexpected stop: removed 1 half-created or half-deleted project, "
                           "1 temporary folder of ZIP imports, 1 stored photo or preview no project lists")
    at.run()
    assert not [i for i in at.info if "unexpected stop" in str(i.value)]  # once per session
    assert sorted(p.name for p in workspace.projects_dir.iterdir()) == [project.id]


def test_a_failed_zip_upload_stays_on_screen_instead_of_the_last_summary(tmp_path, monkeypatch):
    workspace, project = project_with_photos(tmp_path / "ws")
    monkeypatch.setenv("DAPT_ZIP_MAX_ENTRIES", "50")
    at = _app(workspace.root, monkeypatch)
    assert any("3 images added" in str(s.value) for s in at.success)  # the earlier upload's summary
    many = zip_of({f"good/{i}.png": b"" for i in range(60)}, zipfile.ZIP_STORED)
    at.file_uploader(key=f"zip-{project.id}-0").set_value([("many.zip", many, "application/zip")])
    at.run()
    for _ in range(2):  # the page reran to clear the picker, and may run again: the message stays
        errors = [str(e.value) for e in at.error]
        assert any(e.startswith("The archive holds 60 entries; at most 50 are read.") for e in errors), errors
        assert not any("images added" in str(s.value) for s in at.success)
        at.run()
    [hide] = [b for b in at.button if b.label == "Hide this message"]
    hide.click()
    at.run()
    assert not [e for e in at.error if "60 entries" in str(e.value)]
