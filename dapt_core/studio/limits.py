"""How much one file, one upload, one project and one ZIP may hold, in one place.

The defaults fit a factory proof of concept on a shared server: industrial cameras give 5-25 megapixel
photos of 2-75 MB, a class needs tens of them, a project a few thousand. Every limit can be changed for a
server through an environment variable (read when the limit is asked for, so a test or a restarted server
sees a new value); each refusal says the limit it met, in MB, in the user's words.

    DAPT_MAX_FILE_MB           one photo, as uploaded or inside a ZIP             (default 150)
    DAPT_MAX_UPLOAD_MB         the files of one upload together, or one ZIP       (default 500, Streamlit's
                               server.maxUploadSize in .streamlit/config.toml says the same)
    DAPT_MAX_PROJECT_MB        the stored photos of one project                   (default 20000)
    DAPT_ZIP_MAX_ENTRIES       entries of one ZIP                                 (default 20000)
    DAPT_ZIP_MAX_EXPANDED_MB   what one ZIP expands to                            (default 4000)
    DAPT_ZIP_MAX_RATIO         expanded size / archive size, above 64 MB expanded (default 50)
    DAPT_DECODE_BUDGET_MB      memory one photo may take to decode (dapt_core.data.images)

Photos are compressed already, so a ZIP of photos expands to about its own size; a ratio of 50 leaves room
for uncompressed BMP and TIFF files of plain surfaces, and stops the "zip bomb" (a megabyte that expands to
gigabytes of zeros) before it is written out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .storage import WorkspaceError

# Megabytes as the browser counts them: Streamlit's file picker refuses a file past maxUploadSize x 1,000,000
# bytes (x 1,048,576 on Windows) while its server allows x 1,048,576. In decimal MB every limit here is the
# one a user meets first, and the numbers in the messages match the picker's "Limit 500MB per file".
MB = 1000 * 1000


def _env_int(name: str, default: int) -> int:
    """A positive whole number from the environment; the default where it is unset or not a number."""
    try:
        value = int(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class Limits:
    max_file_mb: int = 150
    max_upload_mb: int = 500
    max_project_mb: int = 20_000
    zip_max_entries: int = 20_000
    zip_max_expanded_mb: int = 4000
    zip_max_ratio: int = 50
    zip_ratio_floor_mb: int = 64  # below this, any ratio is fine (a ZIP of a few flat BMPs)

    @classmethod
    def from_env(cls) -> Limits:
        base = cls()
        return cls(max_file_mb=_env_int("DAPT_MAX_FILE_MB", base.max_file_mb),
                   max_upload_mb=_env_int("DAPT_MAX_UPLOAD_MB", base.max_upload_mb),
                   max_project_mb=_env_int("DAPT_MAX_PROJECT_MB", base.max_project_mb),
                   zip_max_entries=_env_int("DAPT_ZIP_MAX_ENTRIES", base.zip_max_entries),
                   zip_max_expanded_mb=_env_int("DAPT_ZIP_MAX_EXPANDED_MB", base.zip_max_expanded_mb),
                   zip_max_ratio=_env_int("DAPT_ZIP_MAX_RATIO", base.zip_max_ratio))

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb * MB

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * MB

    @property
    def max_project_bytes(self) -> int:
        return self.max_project_mb * MB

    def zip_expansion_limit(self, archive_bytes: int) -> int:
        """The most bytes a ZIP of `archive_bytes` may expand to."""
        by_ratio = max(self.zip_ratio_floor_mb * MB, archive_bytes * self.zip_max_ratio)
        return min(self.zip_max_expanded_mb * MB, by_ratio)


def current() -> Limits:
    return Limits.from_env()


def megabytes(size: int) -> int:
    """Bytes as whole MB for a message, rounded up (a file 1 byte over a limit never reads as 'at the limit')."""
    return -(-int(size) // MB)


def refuse_large_upload(total_bytes: int) -> None:
    """Raise WorkspaceError "upload_too_big" when one upload (its files together, or one ZIP) is past the limit."""
    caps = current()
    if total_bytes > caps.max_upload_bytes:
        raise WorkspaceError("upload_too_big", size_mb=megabytes(total_bytes), limit_mb=caps.max_upload_mb)
