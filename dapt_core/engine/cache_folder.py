"""Where the engine keeps what it can compute again (zero-shot class embeddings, frozen features, step times, the
CPU's bf16 check): $DAPT_CACHE_DIR, else the user's cache folder. Everything in it is safe to delete."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "DAPT_CACHE_DIR"


def default_cache_dir() -> Path:
    """$DAPT_CACHE_DIR, else the user's cache folder ($XDG_CACHE_HOME or ~/.cache) / dapt."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dapt"
