"""The workspace as one user may use it: only the projects they are a member of, every change checked against
their role (access.py) before it is made and written to the project's audit log (audit.py) after.

    workspace = UserWorkspace(Workspace(root), "aiko")     # user None: no sign-in, everything allowed
    project = workspace.project(project_id)                 # AccessDenied unless aiko is a member
    project.add_images("scratch", files)                    # AccessDenied for a viewer; audited for an editor

Why a facade, not a user argument on every Project method: the check and the audit entry of each change are
written once, here, beside each other, and the project's own modules (intake, classes, runs) stay about files.
Reading passes straight through to the Project; every public method of Project that changes something is
listed below with the action it needs (tests/test_access.py fails when a new one is not), so no change can
slip past the check by being new. The app reaches projects only through this facade (ui/state.workspace).

Jobs run on the worker thread with a plain Project: whether the user may start one is checked here, when it is
submitted, and the job then acts for its owner (JobContext.owner), who is recorded on the run it saves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from . import audit
from .access import Action, Members, Role, allows, denial, may_cancel
from .job_queue import Job, JobKind, JobQueue, JobSnapshot
from .storage import IntakeReport, ProjectInfo, WorkspaceError
from .unlabelled_pool import PoolIntake, UnlabelledPool
from .workspace import Project, Workspace

# Project's public methods and properties that only read (or fill a cache: previews, a run's map), which
# every member may use. Everything else public on Project is a change, guarded by UserProject below.
READS = frozenset({
    "manifest", "name", "classes", "images", "counts", "image_path", "thumbnail_path", "split", "shot_capacity",
    "labelled_images", "names_by_sha", "good_class", "good_class_confirmed", "last_intake", "run_ids", "runs",
    "run", "interrupted_runs",
})
# UnlabelledPool's public methods that only read; its changes have checked methods on UserPool below (`rank`
# writes the ranking from inside a job, whose start was checked).
POOL_READS = frozenset({"photos", "waiting", "image_path", "thumbnail_path", "ranking", "unlisted_files", "rank",
                        "newest_run"})
# The changes and the action each needs.
CHANGES = {
    "add_images": Action.EDIT, "add_image_paths": Action.EDIT, "import_zip": Action.EDIT,
    "remove_images": Action.EDIT, "move_images": Action.EDIT, "add_class": Action.EDIT,
    "rename_class": Action.EDIT, "delete_class": Action.EDIT, "set_good_class": Action.EDIT,
    "restore_backup": Action.EDIT, "clear_last_intake": Action.EDIT,
    "rename": Action.RENAME, "delete_run": Action.DELETE,
    # What a tuning job does to its project (the job runs with a plain Project; see the module's docstring).
    "save_run": Action.TUNE, "mark_running": Action.TUNE, "clear_running": Action.TUNE,
}


class UserWorkspace:
    """A Workspace seen by `user` (None: no sign-in, one local person who may do everything)."""

    def __init__(self, workspace: Workspace, user: str | None):
        self._workspace = workspace
        self.user = user

    def __getattr__(self, name: str) -> Any:  # root, projects_dir, cache_dir
        if name.startswith("_"):  # not the wrapped one's private parts (nor a loop while `_workspace` is unset)
            raise AttributeError(name)
        return getattr(self._workspace, name)

    @property
    def signed_in(self) -> bool:
        return self.user is not None

    def role_in(self, project_id: str) -> str | None:
        """The user's role in the project; without sign-in everyone acts as its owner."""
        if self.user is None:
            return Role.OWNER
        return Members(self._workspace.projects_dir / project_id).role_of(self.user)

    def list_projects(self) -> list[ProjectInfo]:
        """The projects the user may see (all of them without sign-in)."""
        return [info for info in self._workspace.list_projects() if allows(self.role_in(info.id), Action.VIEW)]

    def unowned_projects(self) -> list[ProjectInfo]:
        """Projects nobody owns (made before sign-in was turned on): no signed-in user sees them until
        `dapt projects grant` names an owner."""
        return [info for info in self._workspace.list_projects()
                if not Members(self._workspace.projects_dir / info.id).owners()]

    def create_project(self, name: str, classes: Iterable[str] = ()) -> UserProject:
        return self._owned(self._workspace.create_project(name, classes))

    def create_demo_project(self, name: str, *, seed: int = 0,
                            progress: Callable[[int, int], None] | None = None) -> UserProject:
        return self._owned(self._workspace.create_demo_project(name, seed=seed, progress=progress), demo=True)

    def _owned(self, project: Project, **details) -> UserProject:
        """A project just created: its creator is its owner (nobody is, without sign-in)."""
        if self.user is not None:
            Members(project.path).set(self.user, Role.OWNER)
        audit.record(project.path, self.user, audit.PROJECT_CREATED, name=project.name, **details)
        audit.record(self._workspace.root, self.user, audit.PROJECT_CREATED, project=project.id, name=project.name)
        return UserProject(project, self)

    def project(self, project_id: str) -> UserProject:
        """The project, if the user may see it: ProjectNotFound, or AccessDenied for a project they are not a
        member of (named by its id only: its name is not theirs to see)."""
        project = self._workspace.project(project_id)
        role = self.role_in(project.id)
        if not allows(role, Action.VIEW):
            raise denial(project.id, role, Action.VIEW)
        return UserProject(project, self)

    def delete_project(self, project_id: str) -> None:
        project = self.project(project_id)
        project.require(Action.DELETE)
        try:
            name = project.name
        except WorkspaceError:  # a damaged manifest: the id says which
            name = project.id
        self._workspace.delete_project(project.id)
        # The project's own log went with its folder: the workspace's log keeps that it was deleted, by whom.
        audit.record(self._workspace.root, self.user, audit.PROJECT_DELETED, project=project.id, name=name)

    def may_cancel(self, job: Job | JobSnapshot) -> bool:
        role = self.role_in(job.project_id) if job.project_id else None
        return may_cancel(job.owner, self.user, role)

    def cancel_job(self, queue: JobQueue, job_id: str) -> bool:
        """Cancel a job: the user's own, or any job of a project they own (anyone's without sign-in)."""
        job = queue.get(job_id)
        if job is None:
            return False
        if not self.may_cancel(job):
            raise denial(job.project_id or "", self.role_in(job.project_id) if job.project_id else None,
                         Action.CANCEL_OTHERS_JOB)
        cancelled = queue.cancel(job_id)
        if cancelled and job.project_id and job.kind != JobKind.CHECK:
            audit.record(self._workspace.projects_dir / job.project_id, self.user, audit.JOB_CANCELLED,
                         job=job.id, kind=job.kind, owner=job.owner)
        return cancelled


class UserProject:
    """A Project seen by one user: reads pass through; changes are checked, made, then audited."""

    def __init__(self, project: Project, workspace: UserWorkspace):
        self.project = project
        self._users = workspace

    def __getattr__(self, name: str) -> Any:
        if name in CHANGES:  # a change without its own method below would skip the check: refuse loudly
            raise AttributeError(f"{name} is a change; give UserProject a checked method for it")
        if name.startswith("__") or name == "project":  # copy/pickle probes, or `project` not set yet
            raise AttributeError(name)
        return getattr(self.project, name)

    # ------------------------------------------------------------------ who
    @property
    def user(self) -> str | None:
        return self._users.user

    @property
    def role(self) -> str | None:
        """Read fresh each time: an owner may change it in another session."""
        return self._users.role_in(self.project.id)

    def may(self, action: str) -> bool:
        return allows(self.role, action)

    def require(self, action: str) -> None:
        role = self.role
        if not allows(role, action):
            raise denial(self._name_or_id(), role, action)

    def _name_or_id(self) -> str:
        try:
            return self.project.name
        except WorkspaceError:
            return self.project.id

    def _record(self, action: str, **details) -> None:
        audit.record(self.project.path, self.user, action, **details)

    # ------------------------------------------------------------------ members and history
    def members(self) -> dict[str, str]:
        self.require(Action.VIEW)
        return Members(self.project.path).roles()

    def owners(self) -> list[str]:
        return Members(self.project.path).owners()

    def set_member(self, name: str, role: str) -> None:
        self.require(Action.MANAGE_MEMBERS)
        name = str(name or "").strip()
        Members(self.project.path).set(name, role)
        self._record(audit.MEMBER_SET, member=name, role=role)

    def remove_member(self, name: str) -> None:
        self.require(Action.MANAGE_MEMBERS)
        Members(self.project.path).remove(name)
        self._record(audit.MEMBER_REMOVED, member=name)

    def history(self, limit: int | None = None) -> list[audit.AuditEntry]:
        self.require(Action.VIEW)
        return audit.read(self.project.path, limit)

    # ------------------------------------------------------------------ photos
    def add_images(self, class_name: str, files, **kwargs) -> IntakeReport:
        self.require(Action.EDIT)
        report = self.project.add_images(class_name, files, **kwargs)
        self._record_intake(report, **{"class": class_name})
        return report

    def add_image_paths(self, class_name: str, paths, **kwargs) -> IntakeReport:
        self.require(Action.EDIT)
        report = self.project.add_image_paths(class_name, paths, **kwargs)
        self._record_intake(report, **{"class": class_name})
        return report

    def import_zip(self, data, *args, **kwargs) -> IntakeReport:
        self.require(Action.EDIT)
        report = self.project.import_zip(data, *args, **kwargs)
        self._record_intake(report, archive=report.source, classes=report.added_by_class())
        return report

    def _record_intake(self, report: IntakeReport, **details) -> None:
        if report.added or report.created_classes:
            self._record(audit.IMAGES_UPLOADED, count=len(report.added), skipped=len(report.skipped),
                         created_classes=report.created_classes, **details)

    def remove_images(self, shas: Iterable[str]) -> int:
        self.require(Action.EDIT)
        shas = list(shas)
        names = self._names(shas)
        removed = self.project.remove_images(shas)
        if removed:
            self._record(audit.IMAGES_REMOVED, count=removed, names=names)
        return removed

    def move_images(self, shas: Iterable[str], to_class: str) -> int:
        self.require(Action.EDIT)
        shas = list(shas)
        names = self._names(shas)
        moved = self.project.move_images(shas, to_class)
        if moved:
            self._record(audit.IMAGES_MOVED, count=moved, to=to_class, names=names)
        return moved

    def _names(self, shas: list[str], most: int = 20) -> list[str]:
        """The photos' names as uploaded, for the log (a few: a log line names a photo, it does not list 500)."""
        records = self.project.names_by_sha()
        return [records[sha].name for sha in shas[:most] if sha in records]

    # ------------------------------------------------------------------ classes and the project
    def add_class(self, name: str) -> str:
        self.require(Action.EDIT)
        added = self.project.add_class(name)
        self._record(audit.CLASS_ADDED, name=added)
        return added

    def rename_class(self, old: str, new: str) -> str:
        self.require(Action.EDIT)
        renamed = self.project.rename_class(old, new)
        if renamed != old:
            self._record(audit.CLASS_RENAMED, old=old, new=renamed)
        return renamed

    def delete_class(self, name: str) -> int:
        self.require(Action.EDIT)
        removed = self.project.delete_class(name)
        self._record(audit.CLASS_DELETED, name=name, images=removed)
        return removed

    def set_good_class(self, name: str | None) -> None:
        self.require(Action.EDIT)
        self.project.set_good_class(name)
        self._record(audit.GOOD_CLASS_SET, name=name)

    def restore_backup(self) -> None:
        self.require(Action.EDIT)
        self.project.restore_backup()
        self._record(audit.BACKUP_RESTORED)

    def clear_last_intake(self) -> None:
        self.require(Action.EDIT)
        self.project.clear_last_intake()

    def rename(self, new_name: str) -> None:
        self.require(Action.RENAME)
        old = self.project.name
        self.project.rename(new_name)
        self._record(audit.PROJECT_RENAMED, old=old, new=self.project.name)

    # ------------------------------------------------------------------ runs and jobs
    def delete_run(self, run_id: str) -> None:
        self.require(Action.DELETE)
        self.project.delete_run(run_id)
        self._record(audit.RUN_DELETED, run=run_id)

    def save_run(self, *args, **kwargs):
        self.require(Action.TUNE)
        return self.project.save_run(*args, created_by=self.user, **kwargs)

    def mark_running(self, job_id: str, info: dict) -> None:
        self.require(Action.TUNE)
        self.project.mark_running(job_id, info)

    def clear_running(self, job_id: str) -> None:
        self.require(Action.TUNE)
        self.project.clear_running(job_id)

    def start_job(self, queue: JobQueue, request, /, **options) -> Job:
        """Queue a job of this project (a tuning run, an evaluation, the check before Start) as the user's.
        A request with its own `submit` (the check, which has a lane of its own) submits itself; `options` are
        JobQueue.submit's (kind, label, device) for a plain work function."""
        self.require(Action.TUNE)
        submit = getattr(request, "submit", None)
        if submit is not None:
            job = submit(queue, owner=self.user)
        else:
            job = queue.submit(request, owner=self.user, **{"project_id": self.project.id, **options})
        if job.kind == JobKind.TUNE:
            settings = getattr(request, "settings", {}) or {}
            self._record(audit.TUNE_STARTED, job=job.id, method=settings.get("method"),
                         backbone=getattr(request, "backbone", None), shots=getattr(request, "shots", None))
        elif job.kind == JobKind.EVALUATE:
            self._record(audit.EVALUATION_STARTED, job=job.id, file=getattr(request, "file_name", None))
        return job

    def note_download(self, what: str, run_id: str | None = None) -> None:
        """Record that the user took a file away (`what`: prompt_file, report, onnx)."""
        self.require(Action.DOWNLOAD)
        self._record(audit.DOWNLOADED, what=what, run=run_id)

    def unlabelled_pool(self) -> UserPool:
        """The project's unlabelled photos (unlabelled_pool.py), as this user may change them."""
        return UserPool(self)


class UserPool:
    """A project's unlabelled pool seen by one user: adding photos, skipping one and emptying the pool need the
    editor role and are written to the project's History; labelling a photo goes through
    UserProject.add_images, which checks and records it as an upload."""

    def __init__(self, project: UserProject):
        self._project = project
        self.pool = UnlabelledPool(project)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "pool":
            raise AttributeError(name)
        if name not in POOL_READS:  # a change without a checked method below would skip the check
            raise AttributeError(f"{name} is not a read of the unlabelled pool; give UserPool a checked method")
        return getattr(self.pool, name)

    def add(self, files) -> PoolIntake:
        self._project.require(Action.EDIT)
        return self._recorded(self.pool.add(files))

    def add_zip(self, content: bytes, archive_name: str = "upload.zip") -> PoolIntake:
        self._project.require(Action.EDIT)
        return self._recorded(self.pool.add_zip(content, archive_name), archive=archive_name)

    def _recorded(self, report: PoolIntake, **details) -> PoolIntake:
        if report.added:
            self._project._record(audit.POOL_PHOTOS_ADDED, count=len(report.added), skipped=len(report.skipped),
                                  **details)
        return report

    def label(self, sha256: str, class_name: str) -> IntakeReport:
        self._project.require(Action.EDIT)
        return self.pool.label(sha256, class_name)

    def skip(self, sha256: str) -> None:
        self._project.require(Action.EDIT)
        name = next((photo.name for photo in self.pool.photos() if photo.sha256 == sha256), None)
        self.pool.skip(sha256)
        if name is not None:
            self._project._record(audit.POOL_PHOTO_SKIPPED, name=name)

    def clear(self) -> None:
        self._project.require(Action.EDIT)
        count = len(self.pool.photos())
        self.pool.clear()
        if count:
            self._project._record(audit.POOL_CLEARED, count=count)
