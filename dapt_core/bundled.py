"""Where the files that ship beside the library lie: the app (app.py, app_pages/, ui/), its Streamlit settings
and the bundled demo CLIP (assets/demo_clip).

In the repository checkout (and an editable install of it) they are the repository's top level, beside
dapt_core/. An installed wheel carries the same files as the package dapt_studio, beside dapt_core in the same
site-packages (pyproject.toml maps the repository's top level onto that package). The checkout comes first.
"""

from __future__ import annotations

from pathlib import Path

# The distribution to install for the app: pyproject.toml's name and its `app` extra.
APP_REQUIREMENT = "dapt-studio[app]"
INSTALLED_PACKAGE = "dapt_studio"

_CHECKOUT = Path(__file__).resolve().parents[1]


def studio_root() -> Path:
    """The folder holding app.py, app_pages/, ui/ and assets/: the checkout, else the installed dapt_studio package.

    Where neither holds them (a broken install), the checkout's path, so that messages name a real place to look.
    """
    for root in (_CHECKOUT, _CHECKOUT / INSTALLED_PACKAGE):
        if (root / "app.py").is_file() and (root / "assets").is_dir():
            return root
    return _CHECKOUT


def app_script() -> Path:
    """The Streamlit entry point, app.py."""
    return studio_root() / "app.py"


def demo_model_dir() -> Path:
    """The bundled demo CLIP's folder (open_clip's folder format)."""
    return studio_root() / "assets" / "demo_clip"
