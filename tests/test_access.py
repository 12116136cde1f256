"""Owners and members: each role against each action through the library (the app goes through the same facade),
projects made before sign-in, no sign-in at all, the cancel rules, the audit log, and `dapt projects`."""

from __future__ import annotations

import io
import json
import os
import threading
from dataclasses import dataclass

import pytest
from PIL import Image

from dapt_core import cli
from dapt_core.studio import audit
from dapt_core.studio.access import AccessDenied, Members
from dapt_core.studio.guarded import CHANGES, POOL_READS, READS, UserPool, UserWorkspace
from dapt_core.studio.job_queue import JobKind, JobQueue
from dapt_core.studio.storage import WorkspaceError
from dapt_core.studio.unlabelled_pool import POOL_DIR, POOL_FILE, UnlabelledPool
from dapt_core.studio.workspace import Project, Workspace

OWNER, EDITOR, VIEWER, OUTSIDER = "olga", "eddie", "vera", "oscar"
RUN_ID = "20261205-101500-dapt-ab12"


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)).save(buffer, format="PNG")
    return buffer.getvalue()


def fake_run(project) -> None:
    """A saved run as the Tune page lists it (the engine's tests make real ones; here only deleting matters)."""
    folder = project.runs_dir / RUN_ID
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({
        "format": "dapt-studio-run", "format_version": 1, "id": RUN_ID, "created": "2026-12-05T10:15:00+00:00",
        "created_by": EDITOR, "method": "dapt", "backbone": {"spec": "demo"}, "shots": 2,
        "metrics": {"accuracy": 0.9, "zero_shot_accuracy": 0.5, "n_test": 4}, "train": [], "test": []}))


@dataclass
class SlowRequest:
    """A job that runs until it is cancelled (so there is a job to cancel)."""

    project_id: str
    kind = JobKind.TUNE
    settings = {"method": "dapt"}
    backbone = "demo"
    shots = 2

    def label(self) -> str:
        return "tune:dapt"

    def device_key(self) -> str:
        return "test-device"

    def run(self, context) -> None:
        context.cancel.wait(20)
        context.check_cancel()


@pytest.fixture
def world(tmp_path):
    """A project owned by olga, with eddie as editor and vera as viewer; oscar is signed in but no member."""
    workspace = Workspace(tmp_path)
    project = UserWorkspace(workspace, OWNER).create_project("Line 3", ["good", "scratch"])
    project.add_images("good", [(f"g{i}.png", png(i)) for i in range(3)])
    project.add_images("scratch", [(f"s{i}.png", png(10 + i)) for i in range(3)])
    project.set_member(EDITOR, "editor")
    project.set_member(VIEWER, "viewer")
    fake_run(project)
    project.unlabelled_pool().add([("waiting.png", png(50))])
    queue = JobQueue()
    yield workspace, project.id, queue
    for job in queue.jobs(active_only=True):
        queue.cancel(job.id)
        job.wait(10)


def _someone_elses_job(workspace, project_id, queue):
    job = queue.submit(SlowRequest(project_id), owner="somebody-else")
    return job.id


# Each action as the app does it, through the user's view of the workspace. Each returns nothing; a refusal
# raises AccessDenied.
ACTIONS = {
    "see in list": lambda ws, pid, q: _assert_listed(ws, pid),
    "open": lambda ws, pid, q: ws.project(pid).counts(),
    "history": lambda ws, pid, q: ws.project(pid).history(),
    "download": lambda ws, pid, q: ws.project(pid).note_download("prompt_file", RUN_ID),
    "upload": lambda ws, pid, q: ws.project(pid).add_images("good", [("new.png", png(99))]),
    "relabel": lambda ws, pid, q: ws.project(pid).move_images([ws.project(pid).images("good")[0].sha256], "scratch"),
    "remove photos": lambda ws, pid, q: ws.project(pid).remove_images([ws.project(pid).images("good")[0].sha256]),
    "add class": lambda ws, pid, q: ws.project(pid).add_class("dent"),
    "rename class": lambda ws, pid, q: ws.project(pid).rename_class("scratch", "scratched"),
    "delete class": lambda ws, pid, q: ws.project(pid).delete_class("scratch"),
    "good class": lambda ws, pid, q: ws.project(pid).set_good_class("good"),
    "tune": lambda ws, pid, q: ws.project(pid).start_job(q, SlowRequest(pid)),
    "add photos to label": lambda ws, pid, q: ws.project(pid).unlabelled_pool().add([("u.png", png(77))]),
    "label one": lambda ws, pid, q: _pool(ws, pid).label(_pool(ws, pid).photos()[0].sha256, "good"),
    "skip one": lambda ws, pid, q: _pool(ws, pid).skip(_pool(ws, pid).photos()[0].sha256),
    "empty the photos to label": lambda ws, pid, q: ws.project(pid).unlabelled_pool().clear(),
    "cancel another's job": lambda ws, pid, q: ws.cancel_job(q, _someone_elses_job(ws, pid, q)),
    "delete run": lambda ws, pid, q: ws.project(pid).delete_run(RUN_ID),
    "rename project": lambda ws, pid, q: ws.project(pid).rename("Line 3 (old)"),
    "manage members": lambda ws, pid, q: ws.project(pid).set_member("newcomer", "viewer"),
    "delete project": lambda ws, pid, q: ws.delete_project(pid),
}


def _pool(ws, pid) -> UserPool:
    return ws.project(pid).unlabelled_pool()


def _assert_listed(ws, pid):
    if pid not in [info.id for info in ws.list_projects()]:
        raise AccessDenied("access_not_member", project=pid)


LOOK = {"see in list", "open", "history", "download"}
CHANGE = {"upload", "relabel", "remove photos", "add class", "rename class", "delete class", "good class", "tune",
          "add photos to label", "label one", "skip one", "empty the photos to label"}
# Written out here, not read from access.py: this is the table the issue asks for.
EXPECTED = {
    OWNER: set(ACTIONS),
    EDITOR: LOOK | CHANGE,
    VIEWER: LOOK,
    OUTSIDER: set(),
    None: set(ACTIONS),  # no sign-in: one local person, everything as before
}


@pytest.mark.parametrize("user", [OWNER, EDITOR, VIEWER, OUTSIDER, None], ids=lambda u: str(u or "no sign-in"))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_access_matrix(world, user, action):
    workspace, pid, queue = world
    before = Project(workspace, pid).manifest()
    pool_before = (workspace.projects_dir / pid / POOL_DIR / POOL_FILE).read_bytes()
    log_before = len(audit.read(workspace.projects_dir / pid))
    ws = UserWorkspace(workspace, user)
    if action in EXPECTED[user]:
        ACTIONS[action](ws, pid, queue)
        if action not in LOOK - {"download"} and action != "delete project":
            assert len(audit.read(workspace.projects_dir / pid)) > log_before, "a change leaves an audit entry"
    else:
        with pytest.raises(AccessDenied) as refused:
            ACTIONS[action](ws, pid, queue)
        assert refused.value.code in ("access_not_member", "access_viewer", "access_owner_only")
        assert Project(workspace, pid).manifest() == before  # nothing changed
        assert (workspace.projects_dir / pid / POOL_DIR / POOL_FILE).read_bytes() == pool_before
        assert RUN_ID in Project(workspace, pid).run_ids()
        assert len(audit.read(workspace.projects_dir / pid)) == log_before


def test_a_refusal_says_what_to_ask_for(world):
    workspace, pid, _ = world
    with pytest.raises(AccessDenied, match="viewer.*Ask its owner to make you an editor"):
        UserWorkspace(workspace, VIEWER).project(pid).add_class("dent")
    with pytest.raises(AccessDenied, match="Only an owner"):
        UserWorkspace(workspace, EDITOR).project(pid).delete_run(RUN_ID)
    with pytest.raises(AccessDenied, match="not a member") as refused:
        UserWorkspace(workspace, OUTSIDER).project(pid)
    assert "Line 3" not in str(refused.value)  # an outsider does not learn the project's name


def test_every_change_of_a_project_is_checked():
    """A new public method of Project must be listed as a read or a change (guarded.py), or it could skip the
    check."""
    public = {name for name in dir(Project) if not name.startswith("_")}
    assert public - READS - set(CHANGES) == set()


def test_every_change_of_the_unlabelled_pool_is_checked(world):
    """A new public method of UnlabelledPool must be a listed read or have a checked method on UserPool."""
    public = {name for name in dir(UnlabelledPool) if not name.startswith("_")}
    checked = {name for name in vars(UserPool) if not name.startswith("_")}
    assert public - POOL_READS - checked == set()
    workspace, pid, _ = world
    with pytest.raises(AttributeError, match="checked method"):  # a change added later, reached without a check
        UserWorkspace(workspace, VIEWER).project(pid).unlabelled_pool().forget_all  # noqa: B018


def test_a_project_made_before_sign_in_is_hidden_until_the_shell_grants_an_owner(tmp_path, capsys):
    workspace = Workspace(tmp_path)
    old = UserWorkspace(workspace, None).create_project("Made on the laptop")
    assert not Members(old.path).owners()
    signed_in = UserWorkspace(workspace, OWNER)
    assert signed_in.list_projects() == []
    assert [info.id for info in signed_in.unowned_projects()] == [old.id]
    with pytest.raises(AccessDenied):
        signed_in.project(old.id)

    assert cli.main(["projects", "grant", "Made on the laptop", OWNER, "owner", "--workspace", str(tmp_path)]) == 0
    assert [info.id for info in signed_in.list_projects()] == [old.id]
    assert signed_in.project(old.id).may("manage_members")
    assert UserWorkspace(workspace, EDITOR).list_projects() == []
    entry = audit.read(old.path, 1)[0]
    assert (entry.action, entry.user, entry.details["member"], entry.details["via"]) == ("member_set", None, OWNER,
                                                                                          "shell")
    capsys.readouterr()
    assert cli.main(["projects", "list", "--workspace", str(tmp_path)]) == 0
    assert f"{old.id}\tMade on the laptop\t{OWNER} (owner)" in capsys.readouterr().out
    assert cli.main(["projects", "grant", old.id, EDITOR, "editor", "--workspace", str(tmp_path)]) == 0
    assert cli.main(["projects", "revoke", old.id, EDITOR, "--workspace", str(tmp_path)]) == 0
    assert UserWorkspace(workspace, EDITOR).list_projects() == []
    assert cli.main(["projects", "revoke", old.id, OWNER, "--workspace", str(tmp_path)]) != 0  # the last owner stays


def test_the_creator_owns_a_new_project_and_others_see_only_their_own(tmp_path):
    workspace = Workspace(tmp_path)
    mine = UserWorkspace(workspace, OWNER).create_project("Olga's")
    theirs = UserWorkspace(workspace, EDITOR).create_project("Eddie's")
    assert Members(mine.path).roles() == {OWNER: "owner"}
    assert [info.id for info in UserWorkspace(workspace, OWNER).list_projects()] == [mine.id]
    assert [info.id for info in UserWorkspace(workspace, EDITOR).list_projects()] == [theirs.id]
    assert {info.id for info in UserWorkspace(workspace, None).list_projects()} == {mine.id, theirs.id}


def test_a_project_keeps_an_owner(world):
    workspace, pid, _ = world
    project = UserWorkspace(workspace, OWNER).project(pid)
    with pytest.raises(WorkspaceError, match="only owner"):
        project.set_member(OWNER, "editor")
    with pytest.raises(WorkspaceError, match="only owner"):
        project.remove_member(OWNER)
    project.set_member(EDITOR, "owner")
    project.remove_member(OWNER)  # eddie owns it now
    assert UserWorkspace(workspace, OWNER).list_projects() == []
    with pytest.raises(WorkspaceError, match="not a role"):
        UserWorkspace(workspace, EDITOR).project(pid).set_member(VIEWER, "admin")


def test_a_role_change_applies_to_a_handle_already_open(world):
    workspace, pid, _ = world
    held = UserWorkspace(workspace, VIEWER).project(pid)  # a page opened before the owner changed the role
    with pytest.raises(AccessDenied):
        held.add_class("dent")
    UserWorkspace(workspace, OWNER).project(pid).set_member(VIEWER, "editor")
    held.add_class("dent")
    UserWorkspace(workspace, OWNER).project(pid).remove_member(VIEWER)
    with pytest.raises(AccessDenied):
        held.add_class("bent")


def test_jobs_belong_to_users_and_only_they_or_the_owner_cancel_them(world):
    workspace, pid, queue = world
    editors_job = UserWorkspace(workspace, EDITOR).project(pid).start_job(queue, SlowRequest(pid))
    assert editors_job.owner == EDITOR and editors_job.snapshot().owner == EDITOR
    second_editor = "edna"
    UserWorkspace(workspace, OWNER).project(pid).set_member(second_editor, "editor")
    with pytest.raises(AccessDenied):
        UserWorkspace(workspace, second_editor).cancel_job(queue, editors_job.id)
    assert editors_job.state != "cancelled"
    assert UserWorkspace(workspace, EDITOR).cancel_job(queue, editors_job.id)  # their own, from any tab
    assert editors_job.wait(10) and editors_job.state == "cancelled"

    other = UserWorkspace(workspace, EDITOR).project(pid).start_job(queue, SlowRequest(pid))
    assert UserWorkspace(workspace, OWNER).cancel_job(queue, other.id)  # the project's owner may cancel any
    other.wait(10)
    cancelled = [entry for entry in audit.read(workspace.projects_dir / pid) if entry.action == "job_cancelled"]
    assert [(entry.user, entry.details["owner"]) for entry in cancelled] == [(OWNER, EDITOR), (EDITOR, EDITOR)]


def test_without_sign_in_jobs_have_no_owner_and_anyone_cancels(world):
    workspace, pid, queue = world
    local = UserWorkspace(workspace, None)
    job = local.project(pid).start_job(queue, SlowRequest(pid))
    assert job.owner is None
    assert local.cancel_job(queue, job.id)


def test_the_audit_log_records_each_change_with_who_and_when(world):
    workspace, pid, queue = world
    folder = workspace.projects_dir / pid
    editor = UserWorkspace(workspace, EDITOR).project(pid)
    good = editor.images("good")
    editor.move_images([good[0].sha256], "scratch")
    editor.remove_images([good[1].sha256])
    editor.add_class("dent")
    editor.rename_class("dent", "dents")
    editor.delete_class("dents")
    editor.note_download("report", RUN_ID)
    job = editor.start_job(queue, SlowRequest(pid))
    UserWorkspace(workspace, EDITOR).cancel_job(queue, job.id)
    owner = UserWorkspace(workspace, OWNER).project(pid)
    owner.delete_run(RUN_ID)
    owner.rename("Line 3b")
    entries = list(reversed(audit.read(folder)))
    assert [e.action for e in entries] == [
        "project_created", "images_uploaded", "images_uploaded", "member_set", "member_set", "pool_photos_added",
        "images_moved",
        "images_removed", "class_added", "class_renamed", "class_deleted", "downloaded", "tune_started",
        "job_cancelled", "run_deleted", "project_renamed"]
    assert entries[1].user == OWNER and entries[1].details == {"class": "good", "count": 3, "skipped": 0,
                                                              "created_classes": []}
    assert entries[5].user == OWNER and entries[5].details == {"count": 1, "skipped": 0}
    assert entries[6].user == EDITOR and entries[6].details == {"count": 1, "to": "scratch", "names": ["g0.png"]}
    assert entries[9].details == {"old": "dent", "new": "dents"}
    assert entries[11].details == {"what": "report", "run": RUN_ID}
    assert entries[-1].details == {"old": "Line 3", "new": "Line 3b"}
    assert all(entry.time.endswith("+00:00") for entry in entries)  # UTC


def test_the_audit_log_is_only_appended_to_and_survives_a_torn_line(world):
    workspace, pid, _ = world
    path = workspace.projects_dir / pid / audit.AUDIT_FILE
    written = path.read_bytes()
    UserWorkspace(workspace, EDITOR).project(pid).add_class("dent")
    assert path.read_bytes().startswith(written)  # earlier lines untouched

    with open(path, "ab") as log:  # a crash in the middle of a write
        log.write(b'{"time": "2026-12-05T10:00:00+00:00", "user": "eddie", "act')
    assert audit.read(path.parent, 1)[0].action == "class_added"
    UserWorkspace(workspace, EDITOR).project(pid).add_class("bent")
    newest = audit.read(path.parent, 2)
    assert [e.action for e in newest] == ["class_added", "class_added"]
    assert newest[0].details == {"name": "bent"}


def test_deleting_a_project_needs_its_owner_and_leaves_a_line_in_the_workspace_log(world):
    workspace, pid, _ = world
    with pytest.raises(AccessDenied):
        UserWorkspace(workspace, EDITOR).delete_project(pid)
    UserWorkspace(workspace, OWNER).delete_project(pid)
    assert not (workspace.projects_dir / pid).exists()
    entry = audit.read(workspace.root, 1)[0]
    assert (entry.action, entry.user, entry.details) == ("project_deleted", OWNER, {"project": pid, "name": "Line 3"})


def test_without_sign_in_the_log_names_no_user(tmp_path):
    project = UserWorkspace(Workspace(tmp_path), None).create_project("Laptop")
    project.add_class("good")
    assert [(e.action, e.user) for e in audit.read(project.path)] == [("class_added", None), ("project_created", None)]


def test_two_sessions_appending_at_once_lose_no_line(tmp_path):
    def write(user):
        for index in range(50):
            audit.record(tmp_path, user, "class_added", name=f"{user}-{index}")

    threads = [threading.Thread(target=write, args=(user,)) for user in (OWNER, EDITOR, VIEWER)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(audit.read(tmp_path)) == 150


def test_a_run_says_who_made_it(world):
    workspace, pid, _ = world
    assert UserWorkspace(workspace, VIEWER).project(pid).runs()[0].created_by == EDITOR


def test_a_tuning_run_records_who_started_it_and_the_log_its_start_and_end(tmp_path, colour_task, tiny_spec):
    from dapt_core.studio import jobs
    from dapt_core.studio.backbone_cache import BACKBONES

    workspace = Workspace(tmp_path / "workspace")
    owner = UserWorkspace(workspace, OWNER).create_project("Colours")
    for folder in sorted(colour_task.iterdir()):
        owner.add_class(folder.name)
        owner.add_image_paths(folder.name, sorted(folder.glob("*.png")))
    owner.set_member(EDITOR, "editor")
    BACKBONES.get(tiny_spec, "cpu")
    request = jobs.TuneRequest(str(workspace.root), owner.id, tiny_spec, {"method": "dapt", "epochs": 1,
                                                                           "batch_size": 8}, shots=2, device="cpu")
    job = UserWorkspace(workspace, EDITOR).project(owner.id).start_job(JobQueue(), request)
    assert job.wait(120) and job.state == "done", job.snapshot().error
    [run] = owner.runs()
    assert run.created_by == EDITOR
    started, finished = [e for e in audit.read(owner.path) if e.action.startswith("tune_")][::-1]
    assert (started.action, started.user, started.details["method"]) == ("tune_started", EDITOR, "dapt")
    assert (finished.action, finished.user, finished.details["run"]) == ("tune_finished", EDITOR, run.id)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_kind_of_history_entry_reads_as_a_sentence(world, lang):
    from ui.project_access import describe

    workspace, pid, queue = world
    editor = UserWorkspace(workspace, EDITOR).project(pid)
    editor.move_images([editor.images("good")[0].sha256], "scratch")
    editor.remove_images([editor.images("good")[0].sha256])
    editor.add_class("dent")
    editor.rename_class("dent", "dents")
    editor.set_good_class(None)
    editor.delete_class("dents")
    editor.note_download("onnx", RUN_ID)
    UserWorkspace(workspace, EDITOR).cancel_job(queue, editor.start_job(queue, SlowRequest(pid)).id)
    owner = UserWorkspace(workspace, OWNER).project(pid)
    owner.delete_run(RUN_ID)
    owner.remove_member(VIEWER)
    owner.rename("Line 3b")
    pool = editor.unlabelled_pool()
    pool.add([("u1.png", png(61)), ("u2.png", png(62))])
    pool.skip(pool.photos()[0].sha256)
    pool.clear()
    audit.record(owner.path, EDITOR, audit.TUNE_FINISHED, run=RUN_ID, job="j")
    audit.record(owner.path, EDITOR, audit.EVALUATION_STARTED, file="prompts.safetensors", job="j")
    entries = audit.read(owner.path)
    assert len({entry.action for entry in entries}) >= 20
    for entry in entries:
        sentence = describe(entry, lang)
        assert "{" not in sentence and "audit." not in sentence, (entry, sentence)  # no placeholder, no key


def test_signed_in_the_projects_page_tells_of_projects_nobody_owns_yet(tmp_path, monkeypatch):
    """The page says how to give them an owner, rather than let them seem lost."""
    from streamlit.testing.v1 import AppTest

    from dapt_core.studio.accounts import Accounts
    from ui import sign_in

    root = tmp_path / "workspace"
    monkeypatch.setenv("DAPT_WORKSPACE", str(root))
    Accounts(root).add(OWNER, "correct horse battery")
    UserWorkspace(Workspace(root), None).create_project("Made on the laptop")
    at = AppTest.from_file(os.path.join(os.path.dirname(__file__), "..", "app.py"), default_timeout=120)
    at.session_state[sign_in.USER_KEY] = OWNER
    at.session_state[sign_in.SIGNED_IN_THROUGH_KEY] = sign_in.LOCAL_ACCOUNT
    at.run()
    assert not at.exception
    assert any("1 project was made before sign-in was turned on" in info.value for info in at.info)
    assert any(f"dapt projects grant PROJECT {OWNER} owner" in code.value for code in at.code)
    assert not [e.value for e in at.header if "Made on the laptop" in e.value]


def test_a_log_line_the_disk_refuses_does_not_turn_a_made_change_into_an_error(tmp_path, caplog):
    # The change is made before its entry is written: a refused entry goes to the server log, not to the user.
    gone = tmp_path / "no such folder"
    with caplog.at_level("WARNING", logger="dapt_core.studio.audit"):
        assert audit.record(gone, "aiko", audit.IMAGES_UPLOADED, count=3) is False
    assert "images_uploaded" in caplog.text and not gone.exists()
    assert audit.record(tmp_path, "aiko", audit.IMAGES_UPLOADED, count=3) is True
    assert [entry.action for entry in audit.read(tmp_path)] == [audit.IMAGES_UPLOADED]
