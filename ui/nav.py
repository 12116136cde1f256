"""The app's four pages, each defined once: its file, URL, title and icon. app.py's st.navigation takes
them from here (st_pages); links and page switches name a page from here (PROJECTS.link(),
INSPECT.switch()), and so do the tests (INSPECT.path).

The page files are in app_pages/, not pages/: while a folder named pages/ sits beside app.py,
Streamlit runs its legacy multipage mode, in which a page file is run on its own (no sidebar, no
language switch), until some session's app.py has called st.navigation in that server process (on a
fresh server, a bookmark of /inspect; every AppTest run). With no pages/ folder, every run starts in
app.py, whose st.navigation picks the page from the URL.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from ui.i18n import t

FOLDER = "app_pages"  # beside app.py


@dataclass(frozen=True)
class AppPage:
    file: str  # in FOLDER
    url_path: str  # the page's URL: /tune
    title_key: str  # its title in the navigation and on its links (ui.i18n)
    icon: str

    @property
    def path(self) -> str:
        """The file relative to app.py, as st.Page, st.switch_page, st.page_link and AppTest take it."""
        return f"{FOLDER}/{self.file}"

    def link(self, label: str | None = None, icon: str | None = None) -> None:
        """A link to this page: by default its title and icon."""
        st.page_link(self.path, label=label or t(self.title_key), icon=icon or self.icon)

    def switch(self) -> None:
        st.switch_page(self.path)


PROJECTS = AppPage("1_projects.py", "projects", "nav.projects", ":material/folder_open:")
TUNE = AppPage("2_tune.py", "tune", "nav.tune", ":material/tune:")
INSPECT = AppPage("3_inspect.py", "inspect", "nav.inspect", ":material/scatter_plot:")
EXPORT = AppPage("4_export.py", "export", "nav.export", ":material/download:")
PAGES = (PROJECTS, TUNE, INSPECT, EXPORT)  # in the navigation's order; the first opens at /


def st_pages() -> list:
    """PAGES as app.py's st.navigation takes them, titled in the session's language."""
    return [st.Page(page.path, title=t(page.title_key), icon=page.icon, url_path=page.url_path,
                    default=page is PAGES[0]) for page in PAGES]
