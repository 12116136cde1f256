"""Uploads on the Projects page: photos of a class and ZIP archives, the limits checked first, and an upload
that failed told in a message that stays until it is dismissed or the next upload succeeds.

Why the message is kept: an upload is handled in one run of the page, which then reruns to clear the file
picker (so that the same files are not added again on every rerun). A message drawn in the failing run
vanished with that rerun, and the summary of the previous upload, still on disk, took its place: the user
saw "5 images added" for an upload that saved nothing.
"""

from __future__ import annotations

import streamlit as st

from dapt_core.errors import DaptError
from dapt_core.studio import limits
from ui.i18n import t
from ui.widgets import show_error

_KEY = "_intake-error-{}"


def add_uploaded_files(project, class_name: str, files) -> None:
    """Add the picked files to `class_name`: refused whole past the per-upload limit; each file is read when
    its turn comes (one upload's bytes are not copied all at once)."""
    def add():
        limits.refuse_large_upload(sum(f.size for f in files))
        project.add_images(class_name, ((f.name, f.getvalue()) for f in files))

    _attempt(project, add)


def import_uploaded_zip(project, archive) -> None:
    """Add a ZIP of class folders, read from the uploaded file itself (no copy of its bytes)."""
    def add():
        limits.refuse_large_upload(archive.size)
        project.import_zip(archive, archive.name)

    _attempt(project, add)


def show_kept_error(project) -> bool:
    """The last upload's error, if it failed, with a button to dismiss it; True when one is shown (the page
    then leaves out the older upload's summary)."""
    error = st.session_state.get(_KEY.format(project.id))
    if error is None:
        return False
    show_error(error)
    if st.button(t("data.intake_error_dismiss"), icon=":material/close:", key="dismiss-intake-error"):
        st.session_state.pop(_KEY.format(project.id), None)
        st.rerun()
    return True


def _attempt(project, add) -> None:
    key = _KEY.format(project.id)
    try:
        add()
    except DaptError as error:
        st.session_state[key] = error
    else:
        st.session_state.pop(key, None)

