"""The Projects page's "Review labels" through AppTest: a planted flip is found, one click moves the photo to
the class it looks like (the manifest changes), "keep" is remembered in the project folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conftest import write_colour_task  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from dapt_core.studio import review_state  # noqa: E402
from dapt_core.studio.workspace import Workspace  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Workspace:
    monkeypatch.setenv("DAPT_WORKSPACE", str(tmp_path / "workspace"))
    return Workspace(tmp_path / "workspace")


def planted_project(workspace: Workspace, tmp_path: Path):
    """The colour task with one red photo filed as green; returns the project and that photo's hash."""
    task = write_colour_task(tmp_path / "colours", per_class=8)
    project = workspace.create_project("Colours")
    for folder in sorted(task.iterdir()):
        project.add_class(folder.name)
        paths = sorted(folder.glob("*.png"))
        if folder.name == "red":
            paths = paths[1:]
        project.add_image_paths(folder.name, paths)
    project.add_image_paths("green", [task / "red" / "red_000.png"])
    flipped = next(r.sha256 for r in project.images() if r.name == "red_000.png")
    return project, flipped


def button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return matches[0]


def run_review(at: AppTest) -> None:
    button(at, "Review labels").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_review_finds_the_flip_and_moves_it_with_one_click(workspace, tmp_path):
    project, flipped = planted_project(workspace, tmp_path)
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    run_review(at)
    markdown = " ".join(str(m.value) for m in at.markdown)
    assert "**red\\_000.png** is labelled 'green' but looks like 'red'" in markdown  # the name as text
    assert next(r.class_name for r in project.images() if r.sha256 == flipped) == "green"  # nothing changed yet

    button(at, "Move to 'red'").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert next(r.class_name for r in project.images() if r.sha256 == flipped) == "red"
    assert "1 image moved to 'red'." in [str(s.value) for s in at.success]
    assert not [b for b in at.button if b.label == "Move to 'red'"]  # the finding is gone


def test_keep_hides_the_finding_on_the_next_review(workspace, tmp_path):
    project, flipped = planted_project(workspace, tmp_path)
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    run_review(at)
    button(at, "Keep, stop asking").click()
    at.run()
    assert review_state.dismissed(project) == {f"suspect_label:{flipped}:red"}
    run_review(at)
    assert not [b for b in at.button if b.label == "Move to 'red'"]
    assert "1 finding you kept earlier is not shown." in [str(c.value) for c in at.caption]
    assert next(r.class_name for r in project.images() if r.sha256 == flipped) == "green"
