"""DAPT Studio: teach CLIP a visual inspection task from a few labelled photos.

    streamlit run app.py            (workspace folder: $DAPT_WORKSPACE, default ./workspace)

This file only sets the page up, starts the background map warm-up once per server, offers the
language switch and routes to the four pages in pages/. Everything else lives in dapt_core (the
engine, no Streamlit) and ui (strings, charts, session helpers).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import streamlit as st  # noqa: E402

# A local icon: a ":material/..." page icon is fetched from a web font host, which fails offline.
st.set_page_config(page_title="DAPT Studio", page_icon=str(Path(__file__).parent / "assets" / "favicon.png"),
                   layout="wide")

from ui import i18n, state, widgets  # noqa: E402

# umap-learn compiles for ~14 s on its first fit in every process: do it now, in the
# background, so the Inspect page only pays for an ordinary fit.
state.warmup()

i18n.language_switch(st.sidebar)
words = i18n.streamlit_words_css(i18n.current_language(), st.get_option("server.maxUploadSize"))
if words:
    st.html(words)
state.keep_settings("tune-")  # the Tune page's choices survive a visit to another page

pages = [
    st.Page("pages/1_projects.py", title=i18n.t("nav.projects"), icon=":material/folder_open:",
            url_path="projects", default=True),
    st.Page("pages/2_tune.py", title=i18n.t("nav.tune"), icon=":material/tune:", url_path="tune"),
    st.Page("pages/3_inspect.py", title=i18n.t("nav.inspect"), icon=":material/scatter_plot:", url_path="inspect"),
    st.Page("pages/4_export.py", title=i18n.t("nav.export"), icon=":material/download:", url_path="export"),
]
navigation = st.navigation(pages)
widgets.sidebar_status(st.sidebar)
try:
    navigation.run()
finally:  # also when the page stops early (st.stop)
    widgets.sidebar_queue(st.sidebar)
