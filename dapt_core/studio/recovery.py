"""What a crash left in the workspace, swept once when a server starts, and a summary to show.

Every change of a project is made so that a crash (SIGKILL, a power cut) at any moment leaves the project
as it was before the change or as it is after it (see workspace.py), never half of it. What it can leave
are things nobody lists and nobody will finish: partial `.tmp` files of atomic writes, the temporary
folders a ZIP is expanded into, hidden folders of projects being created or deleted, runs being assembled
or deleted, and stored photos and previews that a manifest (or the unlabelled pool's index) was about to list
or had just stopped listing. They are invisible to the user but fill the disk (131 MB per expanded ZIP, a
whole project per deletion), so the app removes them once when it starts, before any page runs, and says
what it did.

Never removed: anything a readable manifest lists, the photos a saved run still shows, and anything of a
project whose manifest cannot be read (the user decides about those). Each project is swept holding its
lock, so no change of this process runs on it meanwhile. The sweep assumes one server per workspace (as
the rest of the workspace does): it is not run by the command line, which may run beside a server.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .intake import TEMPORARY_FOLDER
from .runs import INCOMING_PREFIX
from .storage import MANIFEST, SHA256_NAME, WorkspaceError, lock_for

if TYPE_CHECKING:
    from .workspace import Workspace

log = logging.getLogger(__name__)

_PROJECT_LEFTOVERS = (".creating-", ".deleted-")  # workspace.CREATING_PREFIX, DELETED_PREFIX
_RUN_LEFTOVERS = (INCOMING_PREFIX, ".deleted-")


@dataclass
class Recovered:
    """What one sweep removed, by kind, and the bytes that freed."""

    temporary_files: int = 0  # partial files of interrupted writes
    temporary_folders: int = 0  # ZIP archives being expanded
    unfinished_projects: int = 0  # projects being created or deleted
    unfinished_runs: int = 0  # runs being saved or deleted
    orphans: int = 0  # stored photos and previews no manifest lists
    freed_bytes: int = 0

    @property
    def anything(self) -> bool:
        return any((self.temporary_files, self.temporary_folders, self.unfinished_projects, self.unfinished_runs,
                    self.orphans))

    def to_dict(self) -> dict:
        return asdict(self)

    def take(self, kind: str, path: Path) -> None:
        """Remove `path`, counted as `kind` where it could be removed (not on a read-only disk)."""
        size = _remove(path)
        if size is not None:
            setattr(self, kind, getattr(self, kind) + 1)
            self.freed_bytes += size


def recover(workspace: Workspace) -> Recovered:
    """Remove what a crash left in `workspace` (see the module's docstring); returns what was removed."""
    found = Recovered()
    scratch = workspace.root / TEMPORARY_FOLDER
    for entry in _entries(scratch):
        found.take("temporary_folders", entry)
    for folder in _entries(workspace.projects_dir):
        if not folder.is_dir():
            continue
        if folder.name.startswith(_PROJECT_LEFTOVERS):
            found.take("unfinished_projects", folder)
        elif not (folder / MANIFEST).exists():
            if all(path.name.endswith(".tmp") for path in folder.rglob("*") if path.is_file()):
                found.take("unfinished_projects", folder)  # created before its manifest (an older version)
        elif not folder.name.startswith("."):
            with lock_for(folder):
                _sweep_project(workspace, folder.name, found)
    if found.anything:
        log.warning("recovered after an unexpected stop: %s", found.to_dict())
    return found


def _sweep_project(workspace: Workspace, project_id: str, found: Recovered) -> None:
    from .unlabelled_pool import UnlabelledPool
    from .workspace import Project

    project = Project(workspace, project_id)
    for path in project.path.rglob(".*.tmp"):
        if path.is_file():
            found.take("temporary_files", path)
    for folder in _entries(project.runs_dir):
        if folder.is_dir() and folder.name.startswith(_RUN_LEFTOVERS):
            found.take("unfinished_runs", folder)
    try:
        listed = {item["sha256"] for item in project.manifest()["images"]}
    except WorkspaceError:
        return  # a damaged manifest: what it lists is unknown, so nothing of it is an orphan
    keep = listed | project._shas_in_runs()
    for folder in (project.images_dir, project.thumbs_dir):
        for path in _entries(folder):
            sha = path.name.split(".", 1)[0]
            if path.is_file() and SHA256_NAME.match(sha) and sha not in keep:
                found.take("orphans", path)
    for path in UnlabelledPool(project).unlisted_files():
        found.take("orphans", path)


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _remove(path: Path) -> int | None:
    """Remove a file or a folder; the bytes it held (None where it could not be removed: a read-only disk)."""
    try:
        if path.is_dir() and not path.is_symlink():
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
            shutil.rmtree(path)
        else:
            size = path.stat().st_size
            path.unlink()
    except OSError:
        return None
    return size
