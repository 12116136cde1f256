"""The sweep of what a crash left (dapt_core/studio/recovery.py), run once per server process before any
page, and told once per browser session on the Projects page."""

from __future__ import annotations

import streamlit as st

from dapt_core.studio.recovery import Recovered, recover
from dapt_core.studio.workspace import Workspace
from ui import state
from ui.i18n import current_language, t

_SHOWN_KEY = "_recovery-shown"
# Recovered's counts -> the words for each, in the order they are told.
_PARTS = (("unfinished_projects", "recovery.projects"), ("unfinished_runs", "recovery.runs"),
          ("temporary_folders", "recovery.folders"), ("temporary_files", "recovery.files"),
          ("orphans", "recovery.orphans"))


@st.cache_resource(show_spinner=False)
def recover_once(root: str) -> Recovered:
    """Swept once per server process (the first page view, before the page itself runs): the whole workspace,
    whoever's session happens to run it first."""
    return recover(Workspace(root))


def show_once() -> None:
    """"Recovered after an unexpected stop: ..." once per session, where the sweep removed anything."""
    found = recover_once(str(state.workspace().root))
    if not found.anything or st.session_state.get(_SHOWN_KEY):
        return
    st.session_state[_SHOWN_KEY] = True
    lang = current_language()
    parts = [t(key, lang=lang, n=getattr(found, field)) for field, key in _PARTS if getattr(found, field)]
    st.info(t("recovery.summary", lang=lang, parts=t("recovery.separator", lang=lang).join(parts),
              mb=f"{found.freed_bytes / 2**20:.0f}"), icon=":material/healing:")
