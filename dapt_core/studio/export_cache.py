"""Exports the app prepares for a download, kept on disk between the click on "Make" and the click on
"Download" rather than in the server's memory.

An ONNX export holds the backbone's weights (about 340 MB for ViT-B/16). Kept as bytes in a browser session, as
it was, each session that made one held it (and Streamlit a second copy for the download button) until the
session ended. Here it is a file in the workspace's cache folder (safe to delete, like the rest of it), one per
project and run, and the download reads it when clicked. Only the newest KEEP files stay, so the folder cannot
grow with every run ever exported; a session whose file was pruned is asked to make it again.
"""

from __future__ import annotations

import time
from pathlib import Path

FOLDER = "exports"
KEEP = 4
STALE_PARTIAL_SECONDS = 3600  # a half-written export this old was cut off (an export takes a minute or two)


def onnx_zip_path(cache_dir: str | Path, project_id: str, run_id: str) -> Path:
    """Where the ONNX export of one run of one project is kept."""
    return Path(cache_dir) / FOLDER / f"{project_id}-{run_id}-onnx.zip"


def prune(cache_dir: str | Path, keep: int = KEEP, *, now: float | None = None) -> list[Path]:
    """Delete all but the `keep` newest exports (by modification time), and half-written ones left by an export
    that was cut off (a killed server) an hour or more ago; returns the deleted files."""
    folder = Path(cache_dir) / FOLDER
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    files = sorted((p for p in folder.glob("*.zip") if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True)
    stale = [p for p in folder.glob("*.zip.partial") if now - p.stat().st_mtime >= STALE_PARTIAL_SECONDS]
    gone = []
    for path in files[keep:] + stale:
        path.unlink(missing_ok=True)
        gone.append(path)
    return gone
