"""End to end in a real browser (Debian's chromium driven by Playwright), and a server restart.

`streamlit run app.py` is started on a free localhost port with its own workspace folder and
stopped by its PID. Without /usr/bin/chromium these tests skip, unless DAPT_REQUIRE_BROWSER=1
(CI), where they fail. Never run `playwright install`: it downloads a browser and fails offline.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import write_colour_task
from streamlit_server import CHROMIUM, CHROMIUM_ARGS, Server

BACKBONE = os.environ.get("DAPT_TEST_BACKBONE", "demo")

if not Path(CHROMIUM).exists():
    if os.environ.get("DAPT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{CHROMIUM} is missing and DAPT_REQUIRE_BROWSER=1: run scripts/browser.sh "
                    "(apt-get install -y chromium)", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (install it with scripts/browser.sh)", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """State the restart test takes over from the end-to-end test (when that one ran)."""
    return {"workspace": tmp_path_factory.mktemp("browser") / "workspace"}


def open_page(browser, url: str):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    expect(page.get_by_text("Projects and data").first).to_be_visible(timeout=90_000)
    return context, page


def uploader(page, label: str):
    return page.locator('[data-testid="stFileUploader"]').filter(has_text=label).locator('input[type="file"]')


def settle(page) -> None:
    """Wait until the app has finished its rerun: acting on a page that is still being redrawn
    can hit an element that is about to be replaced."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').filter(has_text="Running").wait_for(state="hidden", timeout=60_000)
    page.wait_for_timeout(200)


def fill_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")


# ------------------------------------------------------------------------------ the tests


def test_end_to_end_in_a_real_browser(browser, shared, tmp_path):
    task = write_colour_task(tmp_path / "colours", per_class=6, size=40)
    server = Server(shared["workspace"], tmp_path / "server1.log").start()
    page = None
    try:
        context, page = open_page(browser, server.url)

        # create a project and two classes
        page.get_by_label("New project").fill("Browser line")
        page.get_by_role("button", name="Create project").click()
        expect(page.get_by_text("Project 'Browser line' created.")).to_be_visible()
        for name in ("red", "blue"):
            page.get_by_label("New class").fill(name)
            page.get_by_role("button", name="Add class").click()
            expect(page.get_by_text(f"Class '{name}' added.")).to_be_visible()
            settle(page)

        # upload images into each class (several files at once)
        for name in ("red", "blue"):
            files = sorted((task / name).glob("*.png"))
            uploader(page, f"Add images to '{name}'").set_input_files([str(p) for p in files])
            expect(page.get_by_text(f"{name} — 6 images")).to_be_visible(timeout=60_000)
            settle(page)

        # tune a few epochs
        page.get_by_role("link", name="Tune", exact=True).click()
        expect(page.get_by_role("heading", name="Tune")).to_be_visible()
        if BACKBONE != "demo":
            page.get_by_text("Type a spec").click()
            field = page.get_by_label("Backbone spec", exact=False)
            field.fill(BACKBONE)
            field.press("Enter")
        expect(page.get_by_text("Weights available")).to_be_visible(timeout=60_000)
        fill_number(page, "Training images per class (shots)", 3)
        settle(page)
        page.get_by_text("Advanced settings").click()
        fill_number(page, "Epochs (0 = the recipe's 100)", 3)
        settle(page)
        start = page.get_by_role("button", name="Start tuning")
        expect(start).to_be_enabled()
        clicked = time.perf_counter()
        start.click()
        page.locator('[data-testid="stProgress"]').first.wait_for(state="visible", timeout=30_000)
        first_progress = time.perf_counter() - clicked
        expect(page.get_by_text("Run saved")).to_be_visible(timeout=180_000)
        print(f"\nbrowser: progress bar visible {first_progress:.2f} s after Start")

        # inspect: two embedding maps and the dispersion table
        page.get_by_role("button", name="See why it works").click()
        opened = time.perf_counter()
        expect(page.get_by_role("heading", name="Inspect")).to_be_visible()
        maps = page.locator('[data-testid="stPlotlyChart"]')
        expect(maps.nth(1)).to_be_visible(timeout=120_000)
        expect(page.get_by_text("Dispersion: tight classes, far apart")).to_be_visible()
        expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible()
        print(f"browser: Inspect showed its maps {time.perf_counter() - opened:.2f} s after the click")
        assert page.locator(".js-plotly-plot").count() >= 2

        # export: download the prompt file, and it loads
        page.get_by_role("link", name="Export", exact=True).click()
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Download the prompt file").click()
        target = tmp_path / download_info.value.suggested_filename
        download_info.value.save_as(target)
        from dapt_core.engine.prompt_file import load

        assert load(target).classnames == ["blue", "red"]
        context.close()
        shared["project"] = "Browser line"
    except BaseException:
        if page is not None:  # a picture of the page at the failure, for whoever debugs it
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(f"\nscreenshot of the failure: {tmp_path / 'failure.png'}\nserver log:\n{server.log_text()}")
        raise
    finally:
        server.stop()
    assert server.process is None


def test_a_restart_loses_nothing(browser, shared, tmp_path):
    from dapt_core.studio.workspace import Workspace

    workspace = Workspace(shared["workspace"])
    if "project" not in shared:  # the end-to-end test did not get that far: make a project here
        _project_with_a_run(workspace, tmp_path)
        shared["project"] = "Restart line"
    [info] = [i for i in workspace.list_projects() if i.name == shared["project"]]
    project = workspace.project(info.id)
    [run] = project.runs()

    for attempt in ("first", "second"):
        server = Server(shared["workspace"], tmp_path / f"server-{attempt}.log").start()
        try:
            # the first request of a fresh server asks for a page by URL, as a bookmark would
            context, page = open_page(browser, f"{server.url}/inspect?project={project.id}")
            expect(page.get_by_text("Language / 言語")).to_be_visible()  # inside app.py's navigation
            expect(page.locator('[data-testid="stPlotlyChart"]').nth(1)).to_be_visible(timeout=120_000)
            page.goto(f"{server.url}/?project={project.id}")
            expect(page.get_by_role("heading", name=shared["project"])).to_be_visible()
            expect(page.get_by_text("2 classes, 12 images, 1 saved runs", exact=True)).to_be_visible()
            context.close()
        finally:
            server.stop()  # by PID; the next start is a fresh process reading the same folder
    assert [r.id for r in workspace.project(project.id).runs()] == [run.id]


def _project_with_a_run(workspace, tmp_path):
    from dapt_core.studio import jobs

    task = write_colour_task(tmp_path / "colours", per_class=6, size=40)
    project = workspace.create_project("Restart line", ["red", "blue"])
    for name in ("red", "blue"):
        project.add_image_paths(name, sorted((task / name).glob("*.png")))
    job = jobs.JobQueue().submit(jobs.TuneRequest(str(workspace.root), project.id, BACKBONE,
                                                  {"method": "dapt", "epochs": 2, "batch_size": 8}, shots=3,
                                                  make_projection=False))
    assert job.wait(300) and job.snapshot().state == jobs.DONE, job.snapshot().error
