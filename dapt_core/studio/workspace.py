"""The workspace on disk: projects, their classes and images, and their tuning runs.

    <root>/                                  DAPT_WORKSPACE, default ./workspace
      projects/<project id>/
        project.json                         the manifest: name, classes in order, and every image
                                             (sha256, original name, class)
        project.json.bak                     the manifest before the last change (for recovery)
        images/<sha256>.<ext>                each image once, named by its content hash
        thumbs/<sha256>.sq160.jpg            small square previews for the grids
        intake.json                          what the last upload kept and skipped, and why
        members.json                         who may see and change it, with which role (access.py)
        audit.jsonl                          who changed what, when; only ever appended (audit.py)
        runs/<run id>/
          run.json                           settings, metrics, which images trained and tested
          prompts.safetensors                the prompt file
          embeddings.safetensors             before/after image and text embeddings (Inspect)
          projection.json                    the cached 2-D map of those embeddings

Why it is built this way:
- Upload names never become paths: an image is stored under its content hash, and the name a
  user gave it lives only in the manifest, as text. The same picture uploaded twice is stored once
  and refused the second time (one photo cannot carry two labels).
- Every file is written atomically (a temporary file in the same folder, fsync, rename), and a run
  is assembled in a hidden folder that is renamed into place when complete, so a crash or a
  cancelled run never leaves half a project behind; a browser refresh or a server restart loses
  nothing.
- A manifest that cannot be read is reported (`ManifestDamaged`) and left exactly as it is: the
  project refuses changes until the user restores the backup or fixes the file.
- Changes to a manifest are read-modify-write under a per-project lock, because several browser
  sessions of one server may edit the same project at the same time.

Errors carry a `code` and `params` so that the app can show them in the user's language; their
English message is the fallback (and what scripts see).
"""


from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from .classes import ClassEdits
from .disk import disk_errors
from .intake import ImageIntake
from .runs import ProjectRuns
from .storage import (
    DEFAULT_ROOT,
    FORMAT_VERSION,
    MANIFEST,
    PROJECT_FORMAT,
    WORKSPACE_ENV,
    ProjectInfo,
    ProjectNotFound,
    WorkspaceError,
    atomic_write_json,
    clean_class_name,
    clean_project_name,
    fsync_dir,
    lock_for,
    mtime_of,
    slug_of,
    utc_now,
)

_PROJECT_ID = re.compile(r"^[a-z0-9-]{1,60}$")
# Hidden folders of projects: one being created, one being deleted (recovery.py removes what a crash left).
CREATING_PREFIX = ".creating-"
DELETED_PREFIX = ".deleted-"


# -------------------------------------------------------------------------------- workspace


class Workspace:
    """The folder that holds every project. Cheap to create; holds no state but the root path."""

    def __init__(self, root: str | os.PathLike | None = None):
        root = root if root is not None else os.environ.get(WORKSPACE_ENV) or DEFAULT_ROOT
        self.root = Path(root).expanduser().absolute()
        self.projects_dir = self.root / "projects"
        self.projects_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir = self.root / "cache"  # zero-shot class embeddings, frozen features: safe to delete

    def list_projects(self) -> list[ProjectInfo]:
        """Every project, most recently changed first; damaged ones are listed with their error."""
        infos = []
        for folder in self.projects_dir.iterdir():
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            project = Project(self, folder.name)
            modified = mtime_of(folder / MANIFEST)
            try:
                manifest = project.manifest()
            except WorkspaceError as error:
                infos.append(ProjectInfo(folder.name, folder.name, modified, error=error))
                continue
            infos.append(ProjectInfo(folder.name, manifest["name"], modified, len(manifest["classes"]),
                                     len(manifest["images"]), len(project.run_ids())))
        return sorted(infos, key=lambda info: -info.modified)

    def create_project(self, name: str, classes: Iterable[str] = ()) -> Project:
        name = clean_project_name(name)
        taken = {info.name.casefold() for info in self.list_projects()}
        if name.casefold() in taken:
            raise WorkspaceError("project_exists", name=name)
        base = slug_of(name) or "project"
        project_id = f"{base}-{secrets.token_hex(3)}"
        manifest = {"format": PROJECT_FORMAT, "format_version": FORMAT_VERSION, "id": project_id, "name": name,
                    "created": utc_now(), "classes": [], "images": []}
        for class_name in classes:
            cleaned = clean_class_name(class_name)
            if cleaned.casefold() not in {c.casefold() for c in manifest["classes"]}:
                manifest["classes"].append(cleaned)
        # Made in a hidden folder and renamed into place whole: a crash or a full disk half-way leaves
        # no project without a manifest in the listing (recovery.py sweeps the hidden folder).
        unfinished = self.projects_dir / f"{CREATING_PREFIX}{project_id}"
        try:
            with disk_errors():
                unfinished.mkdir(parents=True)
                atomic_write_json(unfinished / MANIFEST, manifest)
                os.replace(unfinished, self.projects_dir / project_id)
                fsync_dir(self.projects_dir)
        except BaseException:
            shutil.rmtree(unfinished, ignore_errors=True)
            raise
        return Project(self, project_id)

    def project(self, project_id: str) -> Project:
        """The project with this id; raises ProjectNotFound. (A damaged manifest is reported when
        it is read, so a damaged project can still be opened to be repaired or deleted.)"""
        if not _PROJECT_ID.match(str(project_id or "")) or not (self.projects_dir / project_id / MANIFEST).exists():
            raise ProjectNotFound("project_not_found", project=str(project_id))
        return Project(self, project_id)

    def delete_project(self, project_id: str) -> None:
        project = self.project(project_id)
        # Renamed out of the listing first, so a deletion interrupted half-way leaves no
        # half-project behind that looks real.
        trash = self.projects_dir / f"{DELETED_PREFIX}{project_id}-{secrets.token_hex(2)}"
        with lock_for(project.path), disk_errors():
            os.replace(project.path, trash)
        shutil.rmtree(trash, ignore_errors=True)  # what is left (a crash, a read-only disk): recovery.py

    def create_demo_project(self, name: str, *, seed: int = 0,
                            progress: Callable[[int, int], None] | None = None) -> Project:
        """A project holding the demo inspection task (dapt_core.demo.demo_task) with the task's own
        train/test split, so that tuning it here gives the numbers `dapt tune` gives on
        `dapt demo-data`'s folder."""
        from ..demo import demo_task

        project = self.create_project(name, demo_task.CLASSES)
        counts = {"train": demo_task.TRAIN_PER_CLASS, "test": demo_task.TEST_PER_CLASS}
        total = len(demo_task.CLASSES) * sum(counts.values())
        done = 0
        try:
            for class_name in demo_task.CLASSES:
                for part, n in counts.items():
                    files = []
                    for index in range(n):
                        files.append((f"{part}-{index:03d}.png", demo_task.demo_png(seed, part, class_name, index)))
                        done += 1
                        if progress is not None:
                            progress(done, total)
                    project.add_images(class_name, files, source="demo", remember=False, part=part)
        # A full disk half-way, or the app's page stopped by the person going to another page (Streamlit
        # stops the script with a BaseException from the progress callback): no half demo project is left.
        except BaseException:
            try:
                self.delete_project(project.id)
            except WorkspaceError:
                pass
            raise
        return project


class Project(ClassEdits, ImageIntake, ProjectRuns):
    """A handle on one project folder: its manifest (manifest.py), class edits (classes.py), image intake
    (intake.py) and runs (runs.py). Every call reads the manifest fresh, so two sessions that hold
    handles on the same project always see each other's changes."""
