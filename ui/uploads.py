"""Letting go of an upload once the app has taken it.

Streamlit keeps every file a session uploads in the server's memory (its MemoryUploadedFileManager) until the
person removes the file from the widget or the session ends. The app renews an uploader's key once it has
stored what was uploaded (an empty uploader for the next batch), so the old files belong to no widget, yet
stay held: measured through Chromium, each 200 MB ZIP raised the server's memory by about 400 MB for the rest of
the session, three of them by 1 GB (benchmarks/server_memory.py). A shared server with a few people uploading
their shifts would run out of memory. Streamlit's own chat input drops its files the same way once read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

log = logging.getLogger(__name__)


def release(files: Iterable | None) -> int:
    """Drop these uploaded files (st.file_uploader's UploadedFile objects, None allowed) from the server's
    memory; their widget must not be shown again with the same key. Returns how many were dropped."""
    ctx = get_script_run_ctx()
    manager = getattr(ctx, "uploaded_file_mgr", None)
    if not isinstance(manager, MemoryUploadedFileManager):  # another manager (or none, outside a session)
        return 0
    dropped = 0
    for file in files or ():
        file_id = getattr(file, "file_id", None)
        if file_id is not None:
            manager.remove_file(session_id=ctx.session_id, file_id=file_id)
            dropped += 1
    return dropped
