"""The audit log: who changed what in a project, and when, one JSON object per line, only ever appended.

    <project>/audit.jsonl    {"time": "2026-12-05T14:03:11+00:00", "user": "aiko", "action": "images_uploaded",
                              "details": {"class": "scratch", "count": 12}}
    <workspace>/audit.jsonl  projects created and deleted (a deleted project's own log goes with its folder)

`user` is the signed-in user, or null on a machine without sign-in (one local person). Lines are appended with
O_APPEND in one write and fsync'd, so lines of two sessions never interleave and a written line survives a power
cut. A crash in the middle of a write can leave a torn last line: reading skips it, and the next entry starts on
a new line rather than continuing the torn one. Nothing here rewrites or shortens the file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .storage import utc_now

log = logging.getLogger(__name__)

AUDIT_FILE = "audit.jsonl"

# What the entries say happened (the app words them per language: ui/locales "audit.<action>").
PROJECT_CREATED = "project_created"
PROJECT_RENAMED = "project_renamed"
PROJECT_DELETED = "project_deleted"
IMAGES_UPLOADED = "images_uploaded"
IMAGES_MOVED = "images_moved"
IMAGES_REMOVED = "images_removed"
CLASS_ADDED = "class_added"
CLASS_RENAMED = "class_renamed"
CLASS_DELETED = "class_deleted"
GOOD_CLASS_SET = "good_class_set"
BACKUP_RESTORED = "backup_restored"
TUNE_STARTED = "tune_started"
TUNE_FINISHED = "tune_finished"
EVALUATION_STARTED = "evaluation_started"
JOB_CANCELLED = "job_cancelled"
RUN_DELETED = "run_deleted"
DOWNLOADED = "downloaded"
MEMBER_SET = "member_set"
MEMBER_REMOVED = "member_removed"
POOL_PHOTOS_ADDED = "pool_photos_added"  # photos put in the unlabelled pool (labelling one is an upload)
POOL_PHOTO_SKIPPED = "pool_photo_skipped"
POOL_CLEARED = "pool_cleared"

_append_lock = threading.Lock()  # one appender at a time in this process (the torn-line check reads, then writes)


@dataclass(frozen=True)
class AuditEntry:
    time: str
    user: str | None
    action: str
    details: dict = field(default_factory=dict)


def record(folder: Path, user: str | None, action: str, **details) -> bool:
    """Append one entry to `folder`/audit.jsonl; False (and a line in the server log) when the disk refuses it.

    Entries are written after the change they describe is made: a full or read-only disk that refuses the
    entry must not make the page say the change failed, so the server log keeps what the History misses."""
    line = json.dumps({"time": utc_now(), "user": user, "action": action, "details": details},
                      ensure_ascii=False, default=str)
    path = Path(folder) / AUDIT_FILE
    with _append_lock:
        try:
            handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if not _ends_with_newline(path):
                    line = "\n" + line  # a torn last line stays on its own line, and this entry stays readable
                os.write(handle, (line + "\n").encode("utf-8"))
                os.fsync(handle)
            finally:
                os.close(handle)
        except OSError as error:
            log.warning("audit entry not written (%s): %s", error, line)
            return False
    return True


def read(folder: Path, limit: int | None = None) -> list[AuditEntry]:
    """The entries, newest first (at most `limit`); lines that are not whole entries are skipped."""
    try:
        text = (Path(folder) / AUDIT_FILE).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    entries = []
    for line in reversed(text.splitlines()):
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("action"), str):
            continue
        user = data.get("user")
        entries.append(AuditEntry(str(data.get("time", "")), None if user is None else str(user), data["action"],
                                  data["details"] if isinstance(data.get("details"), dict) else {}))
        if limit is not None and len(entries) >= limit:
            break
    return entries


def _ends_with_newline(path: Path) -> bool:
    try:
        with open(path, "rb") as existing:
            existing.seek(0, os.SEEK_END)
            if existing.tell() == 0:
                return True
            existing.seek(-1, os.SEEK_END)
            return existing.read(1) == b"\n"
    except OSError:
        return True
