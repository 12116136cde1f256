"""Which of the server's own files a signed-in user may name: local weights files and model folders.

The Tune page takes a weights file or a model folder by its path on the server. On one laptop that is the
user's own disk. Once the app is shared (sign-in on), anyone signed in could name any server file, and the
answers told them which exist ("Could not load /etc/shadow as weights" against "not found"). So with
sign-in on, such a path must lie inside the folders the server allows, after links are followed, and any
other path gets one answer, whether or not it exists: "This path cannot be used".

The allowed folders are DAPT_ALLOWED_DIRS (separated by the system's path separator, ':' on Linux), by
default the workspace's `models/` folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..engine.backbone_specs import DEMO, LOCAL_DIR_PREFIX
from .storage import WorkspaceError

ALLOWED_DIRS_ENV = "DAPT_ALLOWED_DIRS"
DEFAULT_FOLDER = "models"


def allowed_folders(workspace_root: str | os.PathLike) -> list[Path]:
    listed = [part for part in os.environ.get(ALLOWED_DIRS_ENV, "").split(os.pathsep) if part.strip()]
    folders = listed or [str(Path(workspace_root) / DEFAULT_FOLDER)]
    return [Path(os.path.realpath(Path(folder).expanduser())) for folder in folders]


def path_in_spec(spec: str) -> str | None:
    """The server path a backbone spec names ("local-dir:PATH", "NAME:PATH"), or None for "demo" and
    "NAME:TAG". Anything that could be read as a file counts as a path, as engine/backbone.py reads it."""
    spec = spec.strip()
    if spec == DEMO:
        return None
    if spec.startswith(LOCAL_DIR_PREFIX):
        return spec[len(LOCAL_DIR_PREFIX):]
    _, sep, source = spec.partition(":")
    if not sep or not source:
        return None
    if "/" in source or "\\" in source or "." in source or source.startswith("~") or os.path.exists(source):
        return source
    return None


def refuse_outside(spec: str, workspace_root: str | os.PathLike, *, restricted: bool) -> None:
    """Raise WorkspaceError "path_not_allowed" when `restricted` (sign-in on) and `spec` names a server
    path outside the allowed folders; the same answer whether or not that path exists."""
    if not restricted:
        return
    path = path_in_spec(spec)
    if path is None:
        return
    folders = allowed_folders(workspace_root)
    real = Path(os.path.realpath(Path(path).expanduser()))
    if not any(real == folder or folder in real.parents for folder in folders):
        raise WorkspaceError("path_not_allowed", folders=", ".join(folder.name + "/" for folder in folders))
