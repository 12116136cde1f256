"""A full, read-only or forbidden workspace disk, told as a WorkspaceError a user can act on.

Every write of the workspace goes through the library (intake, manifest, project create, rename and
delete, run saving). Where the disk refuses, the operating system's OSError names a server path and
an errno ("[Errno 28] No space left on device: '/srv/dapt/...'"), which tells a quality engineer
neither what happened nor what to do, and shows the server's folders to anyone signed in. These
errors are turned into WorkspaceErrors with a code ("disk_full", "read_only", "no_permission") whose
message says what happened and what to do, and no path. Any other OSError passes unchanged: it is
a bug or a damaged file, and keeps its traceback.
"""

from __future__ import annotations

import errno
import re
from contextlib import contextmanager

from .storage import WorkspaceError

# errno -> the WorkspaceError code a user is told.
DISK_CODES = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",  # a quota is a full disk for this user
    errno.EFBIG: "disk_full",
    errno.EROFS: "read_only",
    errno.EACCES: "no_permission",
    errno.EPERM: "no_permission",
}


# Libraries written in Rust (safetensors) raise their own error types, whose text ends in "(os error 28)".
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def disk_error(error: BaseException) -> WorkspaceError | None:
    """The WorkspaceError that tells `error` to a user, or None when it is not a disk refusal."""
    if isinstance(error, OSError):
        number = error.errno
    else:
        found = _RUST_OS_ERROR.search(str(error)) if isinstance(error, Exception) else None
        number = int(found.group(1)) if found else None
    return WorkspaceError(DISK_CODES[number]) if number in DISK_CODES else None


@contextmanager
def disk_errors():
    """Within this block, a full, read-only or forbidden disk raises a WorkspaceError with a code."""
    try:
        yield
    except OSError as error:
        told = disk_error(error)
        if told is None:
            raise
        raise told from error
