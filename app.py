"""DAPT Studio: teach CLIP a visual inspection task from a few labelled photos.

    streamlit run app.py            (workspace folder: $DAPT_WORKSPACE, default ./workspace)

This file only sets the page up, starts the background map warm-up once per server, offers the
language switch and routes to the four pages in app_pages/ (each defined once, in ui/nav.py; why the
folder is not named pages/ is said there). Everything else lives in dapt_core (the engine, no
Streamlit) and ui (strings, charts, session helpers).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import streamlit as st  # noqa: E402

# A local icon: a ":material/..." page icon is fetched from a web font host, which fails offline.
st.set_page_config(page_title="DAPT Studio", page_icon=str(Path(__file__).parent / "assets" / "favicon.png"),
                   layout="wide")

from ui import i18n, nav, recovery_view, sign_in, state, widgets  # noqa: E402

# umap-learn compiles for ~14 s on its first fit in every process: do it now, in the
# background, so the Inspect page only pays for an ordinary fit.
state.warmup()
# What a crash left (half-made projects and runs, temporary ZIP folders, unlisted photos) is swept once per
# server process, before any page can write (dapt_core/studio/recovery.py); the Projects page says what.
recovery_view.recover_once(str(state.workspace().root))

i18n.language_switch(st.sidebar)
words = i18n.streamlit_words_css(i18n.current_language(), st.get_option("server.maxUploadSize"))
if words:
    st.html(words)
sign_in.require_sign_in()  # served on a network: accounts first (ui/sign_in.py)
state.keep_settings("tune-")  # the Tune page's choices survive a visit to another page

navigation = st.navigation(nav.st_pages())
widgets.sidebar_status(st.sidebar)
try:
    navigation.run()
finally:  # also when the page stops early (st.stop)
    widgets.sidebar_queue(st.sidebar)
