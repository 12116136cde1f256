"""Owners and members in a real browser: four people signed in at once, each in their own browser context, see
what their role in one project allows (tests/test_access.py checks every role and action through the library).

One server for the whole file: the suite has a time budget. Without /usr/bin/chromium this skips, unless
DAPT_REQUIRE_BROWSER=1 (CI). Never run `playwright install`.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image
from streamlit_server import CHROMIUM, CHROMIUM_ARGS, Server

from dapt_core.studio.accounts import Accounts
from dapt_core.studio.guarded import UserWorkspace
from dapt_core.studio.workspace import Workspace

if not Path(CHROMIUM).exists():
    if os.environ.get("DAPT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{CHROMIUM} is missing and DAPT_REQUIRE_BROWSER=1: run scripts/browser.sh", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (install it with scripts/browser.sh)", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

expect.set_options(timeout=30_000)
PASSWORD = "correct horse battery"
OWNER, EDITOR, VIEWER, OUTSIDER = "olga", "eddie", "vera", "oscar"
RUN_ID = "20261205-101500-dapt-ab12"


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (seed * 37 % 256, seed * 91 % 256, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A workspace with four accounts and olga's project "Press line" (eddie editor, vera viewer), served."""
    root = tmp_path_factory.mktemp("access") / "workspace"
    accounts = Accounts(root)
    for name in (OWNER, EDITOR, VIEWER, OUTSIDER):
        accounts.add(name, PASSWORD)
    project = UserWorkspace(Workspace(root), OWNER).create_project("Press line", ["good", "dent"])
    project.add_images("good", [(f"good-{i}.png", png(i)) for i in range(3)])
    project.add_images("dent", [(f"dent-{i}.png", png(20 + i)) for i in range(3)])
    project.set_member(EDITOR, "editor")
    project.set_member(VIEWER, "viewer")
    run = project.runs_dir / RUN_ID  # a saved run as the Tune page lists it (made by eddie)
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({
        "format": "dapt-studio-run", "format_version": 1, "id": RUN_ID, "created": "2026-12-05T10:15:00+00:00",
        "created_by": EDITOR, "method": "dapt", "backbone": {"spec": "demo"}, "shots": 2,
        "metrics": {"accuracy": 0.9, "zero_shot_accuracy": 0.5, "n_test": 4}, "train": [], "test": []}))
    server = Server(root, root.parent / "server.log").start()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield server, browser
        finally:
            browser.close()
            server.stop()


def signed_in(browser, server: Server, name: str):
    """A browser context of its own (its own cookies and session) with `name` signed in on the Projects page."""
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server.url)
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible(timeout=90_000)
    expect(page.get_by_text("Projects and data").first).to_be_visible(timeout=60_000)
    return context, page


def settle(page) -> None:
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').filter(has_text="Running").wait_for(state="hidden", timeout=60_000)
    page.wait_for_timeout(200)


def open_expander(page, label: str) -> None:
    page.locator('[data-testid="stExpander"] summary').filter(has_text=label).first.click()


def history_cells(page):
    open_expander(page, "History")
    return page.locator('[data-testid="stExpander"]').filter(has_text="History") \
        .locator('[data-testid="stDataFrame"]').locator("[role=gridcell]")


def test_each_person_sees_what_their_role_allows(served, tmp_path):
    server, browser = served
    heading = "Press line"

    # an outsider does not see the project at all
    context, page = signed_in(browser, server, OUTSIDER)
    expect(page.get_by_text("No projects yet.")).to_be_visible()
    expect(page.get_by_role("heading", name=heading)).to_have_count(0)
    context.close()

    # a viewer sees it and its History, and can change nothing
    context, page = signed_in(browser, server, VIEWER)
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.get_by_text("You are a viewer")).to_be_visible()
    expect(page.get_by_role("button", name="Add class")).to_be_disabled()
    expect(page.locator('[data-testid="stFileUploader"]').filter(has_text="Add images to 'good'")
           .locator('input[type="file"]')).to_be_disabled()
    open_expander(page, "Project settings")
    expect(page.get_by_role("button", name="Delete project")).to_be_disabled()
    expect(page.get_by_role("button", name="Rename", exact=True)).to_be_disabled()
    expect(page.locator('[data-testid="stExpander"] summary').filter(has_text="Members")).to_have_count(0)
    cells = history_cells(page)
    expect(cells.filter(has_text="uploaded 3 photos to good")).to_have_count(1)
    expect(cells.filter(has_text="made vera viewer")).to_have_count(1)
    page.get_by_role("link", name="Tune", exact=True).click()  # nor start a run, nor delete one
    expect(page.get_by_text(f"by {EDITOR}")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Start tuning")).to_be_disabled()
    expect(page.get_by_role("button", name="Delete", exact=True)).to_be_disabled()
    context.close()

    # an editor uploads; deleting and the members stay the owner's
    photo = tmp_path / "new-good.png"
    photo.write_bytes(png(99))
    context, page = signed_in(browser, server, EDITOR)
    page.locator('[data-testid="stFileUploader"]').filter(has_text="Add images to 'good'") \
        .locator('input[type="file"]').set_input_files([str(photo)])
    expect(page.get_by_text("Last upload: 1 image added (good: 1).")).to_be_visible(timeout=60_000)
    settle(page)
    open_expander(page, "Project settings")
    expect(page.get_by_role("button", name="Delete project")).to_be_disabled()
    expect(page.locator('[data-testid="stExpander"] summary').filter(has_text="Members")).to_have_count(0)
    context.close()

    # the owner sees delete and the members panel, and the editor's upload in the History, by name
    context, page = signed_in(browser, server, OWNER)
    open_expander(page, "Project settings")
    expect(page.get_by_role("button", name="Delete project")).to_be_enabled()
    cells = history_cells(page)
    expect(cells.filter(has_text="uploaded 1 photo to good")).to_have_count(1)
    expect(cells.filter(has_text=EDITOR)).not_to_have_count(0)
    open_expander(page, "Members")
    page.get_by_label("Name they sign in with").fill(OUTSIDER)
    page.get_by_role("button", name="Add or change").click()
    expect(page.get_by_text(f"{OUTSIDER} is now editor of this project.")).to_be_visible()
    context.close()

    # ... and the person the owner added now finds the project
    context, page = signed_in(browser, server, OUTSIDER)
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.get_by_text("You are an editor")).to_be_visible()
    context.close()
