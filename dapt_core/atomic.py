"""Writing files so that a reader sees the old version or the new one, never half of one.

A crash, a cancelled run or a full disk in the middle of a save must not leave a damaged prompt
file, manifest or result behind that later looks valid: data goes to a temporary file in the same
folder, is flushed to disk, and only then renamed over the target (a rename is atomic).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes files private; these are ordinary user files
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data, indent: int = 2) -> Path:
    """JSON with NaN refused (it is not standard JSON), non-ASCII kept readable."""
    return write_text(path, json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False) + "\n")
