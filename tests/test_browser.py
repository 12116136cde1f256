"""End to end in a real browser (Debian's chromium driven by Playwright), and a server restart.

`streamlit run app.py` is started on a free localhost port with its own workspace folder and
stopped by its PID. Without /usr/bin/chromium these tests skip, unless DAPT_REQUIRE_BROWSER=1
(CI), where they fail. Never run `playwright install`: it downloads a browser and fails offline.
"""

from __future__ import annotations

import os
import re
import time
import zipfile
from contextlib import contextmanager
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

# The machines these run on can be busy: a rerun may take seconds, not the default 5 s.
expect.set_options(timeout=30_000)


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


@contextmanager
def app_page(browser, server: Server, url: str, tmp_path: Path):
    """A page of the app at `url` on the started `server`, for the length of a test. On a failure inside, a
    full-page screenshot and the server's log are printed for whoever debugs it; the browser context is closed
    and the server stopped either way."""
    context = page = None
    try:
        context, page = open_page(browser, url)
        yield page
    except BaseException:
        if page is not None:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(f"\nscreenshot of the failure: {tmp_path / 'failure.png'}\nserver log:\n{server.log_text()}")
        raise
    finally:
        if context is not None:
            context.close()
        server.stop()


def uploader(page, label: str):
    return page.locator('[data-testid="stFileUploader"]').filter(has_text=label).locator('input[type="file"]')


def settle(page) -> None:
    """Wait until the app has finished its rerun: acting on a page that is still being redrawn
    can hit an element that is about to be replaced."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').filter(has_text="Running").wait_for(state="hidden", timeout=60_000)
    page.wait_for_timeout(200)


def open_advanced(page, field: str) -> None:
    """Open the Tune page's "Advanced settings" and wait for `field` in it. A rerun that lands just after the
    click (the weights check ending, say) can redraw the expander closed, so it is opened again until the field
    shows."""
    inside = page.get_by_label(field, exact=True)
    for _ in range(3):
        settle(page)
        page.get_by_text("Advanced settings").click()
        try:
            expect(inside).to_be_visible(timeout=10_000)
            return
        except AssertionError:
            continue
    expect(inside).to_be_visible()


def fill_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")


# ------------------------------------------------------------------------------ the tests


def picture(path: Path, size: tuple[int, int], colour=(200, 40, 40)) -> Path:
    from PIL import Image

    Image.new("RGB", size, colour).save(path)
    return path


def elsewhere(server: Server, urls: list[str]) -> list[str]:
    """The requests that left the app's own server (an offline machine cannot answer them)."""
    return [url for url in urls if not url.startswith((server.url, "data:", "blob:"))]


def test_end_to_end_in_a_real_browser(browser, shared, tmp_path):
    task = write_colour_task(tmp_path / "colours", per_class=6, size=40)
    server = Server(shared["workspace"], tmp_path / "server1.log").start()
    with app_page(browser, server, server.url, tmp_path) as page:
        requested = []
        page.on("request", lambda request: requested.append(request.url))

        # create a project and two classes
        page.get_by_label("New project").fill("Browser line")
        page.get_by_role("button", name="Create project").click()
        expect(page.get_by_text("Project 'Browser line' created.")).to_be_visible()
        for name in ("red", "blue"):
            expect(page.get_by_label("New class")).to_have_count(1)  # the rerun has replaced the old form
            page.get_by_label("New class").fill(name)
            page.get_by_role("button", name="Add class").click()
            expect(page.get_by_text(f"Class '{name}' added.")).to_be_visible()
            settle(page)

        # upload images into each class (several files at once): 6 photos per class
        for name in ("red", "blue"):
            files = sorted((task / name).glob("*.png"))
            uploader(page, f"Add images to '{name}'").set_input_files([str(p) for p in files])
            # the summary comes with the last of the upload's reruns: the page is ready for the next
            expect(page.get_by_text(f"Last upload: 6 images added ({name}: 6).")).to_be_visible(timeout=60_000)
            expect(page.get_by_text(f"{name} — 6 images")).to_be_visible()
            settle(page)
        # pictures of extreme shapes are shown like any other, on this visit and the next
        strip, dot = picture(tmp_path / "strip.webp", (3000, 20)), picture(tmp_path / "dot.png", (1, 1))
        uploader(page, "Add images to 'red'").set_input_files([str(strip), str(dot)])
        expect(page.get_by_text("Last upload: 2 images added (red: 2).")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("red — 8 images")).to_be_visible()
        settle(page)
        for _ in range(2):
            expect(page.get_by_text("blue — 6 images")).to_be_visible()  # what comes after the strip's class
            assert page.get_by_text("This app has encountered an error").count() == 0
            expect(page.locator('[data-testid="stImage"] img')).to_have_count(8 + 6)
            page.reload()
            expect(page.get_by_text("red — 8 images")).to_be_visible(timeout=60_000)
            settle(page)

        # tune a few epochs
        page.get_by_role("link", name="Tune", exact=True).click()
        expect(page.get_by_role("heading", name="Tune")).to_be_visible()
        if BACKBONE != "demo":
            page.get_by_text("Type a spec").click()
            field = page.get_by_label("Backbone spec", exact=False)
            field.fill(BACKBONE)
            field.press("Enter")
        expect(page.get_by_text("Weights available")).to_be_visible(timeout=180_000)
        # the default shots fit the data: every class keeps test photos (blue has 6: 3 train, 3 test)
        expect(page.get_by_label("Training images per class (shots)", exact=True)).to_have_value("3")
        open_advanced(page, "Epochs (0 = the recipe's 100)")
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

        # export: download the prompt file and, straight after, the report; both arrive
        page.get_by_role("link", name="Export", exact=True).click()
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Download the prompt file").click()
        with page.expect_download(timeout=120_000) as report_info:
            page.get_by_role("button", name="Download the HTML report").click()
        target = tmp_path / download_info.value.suggested_filename
        download_info.value.save_as(target)
        from dapt_core.engine.prompt_file import load

        assert load(target).classnames == ["blue", "red"]
        report = tmp_path / report_info.value.suggested_filename
        report_info.value.save_as(report)
        assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
        # the ONNX export: made on the server's disk, read when Download is clicked
        page.get_by_role("button", name="Make the ONNX export").click()
        onnx_button = page.get_by_role("button", name=re.compile(r"^Download the ZIP with "))
        expect(onnx_button).to_be_visible(timeout=180_000)
        with page.expect_download(timeout=120_000) as onnx_info:
            onnx_button.click()
        archive = tmp_path / onnx_info.value.suggested_filename
        onnx_info.value.save_as(archive)
        with zipfile.ZipFile(archive) as opened:
            assert sorted(name.rsplit(".", 1)[1] for name in opened.namelist()) == ["json", "onnx"]
        assert elsewhere(server, requested) == []  # the favicon included: the app works offline
        shared["project"], shared["summary"] = "Browser line", "2 classes, 14 images, 1 saved run"
    assert server.process is None


def test_a_restart_loses_nothing(browser, shared, tmp_path):
    from dapt_core.studio.workspace import Workspace

    workspace = Workspace(shared["workspace"])
    if "project" not in shared:  # the end-to-end test did not get that far: make a project here
        _project_with_a_run(workspace, tmp_path)
        shared["project"], shared["summary"] = "Restart line", "2 classes, 12 images, 1 saved run"
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
            expect(page.get_by_text(shared["summary"], exact=True)).to_be_visible()
            context.close()
        finally:
            server.stop()  # by PID; the next start is a fresh process reading the same folder
    assert [r.id for r in workspace.project(project.id).runs()] == [run.id]


def test_every_page_opens_by_its_url_inside_the_apps_navigation(browser, tmp_path):
    """A fresh server's first request asks for a page by URL, then a refresh, then every page by its
    URL: each shows app.py's navigation (the four pages, the language switch), never a list of files
    that Streamlit would make on its own from a pages/ folder."""
    from ui import nav
    from ui.i18n import t

    server = Server(tmp_path / "workspace", tmp_path / "server.log").start()
    try:
        context, page = open_page(browser, f"{server.url}/{nav.TUNE.url_path}")
        for url in [None, *(f"{server.url}/{app_page.url_path}" for app_page in nav.PAGES)]:
            if url is None:
                page.reload()
            else:
                page.goto(url)
            settle(page)
            links = page.locator('[data-testid="stSidebarNav"] [data-testid="stSidebarNavLink"]')
            expect(links).to_contain_text([t(app_page.title_key, lang="en") for app_page in nav.PAGES])
            expect(links).to_have_count(len(nav.PAGES))
            expect(page.get_by_text("Language / 言語")).to_be_visible()
        context.close()
    finally:
        server.stop()


def _project_with_a_run(workspace, tmp_path):
    from dapt_core.studio import job_queue, jobs

    task = write_colour_task(tmp_path / "colours", per_class=6, size=40)
    project = workspace.create_project("Restart line", ["red", "blue"])
    for name in ("red", "blue"):
        project.add_image_paths(name, sorted((task / name).glob("*.png")))
    job = job_queue.JobQueue().submit(jobs.TuneRequest(str(workspace.root), project.id, BACKBONE,
                                                  {"method": "dapt", "epochs": 2, "batch_size": 8}, shots=3,
                                                  make_projection=False))
    assert job.wait(300) and job.snapshot().state == job_queue.DONE, job.snapshot().error


def test_the_report_renders_as_a_standalone_file_in_chromium(browser, tmp_path):
    """The HTML report as a user opens it (a file, offline), built in a process where Streamlit
    is imported, as inside the app: full class names on the confusion matrices, % ticks inside
    the chart, a colour of its own for every training-curve line, nothing fetched."""
    import streamlit  # noqa: F401  (it changes plotly's default template, as in the app)

    from dapt_core.studio import job_queue, jobs
    from dapt_core.studio.workspace import Workspace
    from ui.report_builder import build_report
    from ui.run_view import load_view

    task = write_colour_task(tmp_path / "colours", per_class=6, size=40)
    names = {"red": "no defect", "green": "deep scratch on the surface", "blue": "stain"}
    workspace = Workspace(tmp_path / "workspace")
    project = workspace.create_project("Report line", list(names.values()))
    for folder, name in names.items():
        project.add_image_paths(name, sorted((task / folder).glob("*.png")))
    job = job_queue.JobQueue().submit(jobs.TuneRequest(str(workspace.root), project.id, BACKBONE,
                                                  {"method": "dapt", "epochs": 3, "batch_size": 4}, shots=3,
                                                  make_projection=False))
    assert job.wait(300) and job.snapshot().state == job_queue.DONE, job.snapshot().error
    report = tmp_path / "report.html"
    report.write_text(build_report(load_view(project.run(job.snapshot().result["run_id"])), project.name, lang="en"),
                      encoding="utf-8")

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    fetched = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(report.as_uri())
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 14")
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    print(f"\nscreenshot of the report: {tmp_path / 'report.png'}")
    assert [url for url in fetched if not url.startswith(("file:", "data:"))] == []

    def tick_labels(figure_id: str, axis: str) -> list[dict]:
        """Each tick label of the figure's axis: its text and whether it lies inside the figure."""
        return page.evaluate("""([id, axis]) => {
            const figure = document.getElementById(id).getBoundingClientRect();
            return [...document.querySelectorAll(`#${id} .${axis}axislayer-above .${axis}tick text`)].map(t => {
                const box = t.getBoundingClientRect();
                return {text: t.textContent, inside: box.left >= figure.left - 0.5 && box.right <= figure.right + 0.5
                        && box.top >= figure.top - 0.5 && box.bottom <= figure.bottom + 0.5};
            });
        }""", [figure_id, axis])

    # figures in the order the report draws them: the pass/fail trade-off (the project has a "no defect"
    # class), 2 maps, per-class bars, 2 confusion matrices, loss
    tradeoff = tick_labels("figure-0", "y")
    assert "100%" in [label["text"] for label in tradeoff] and all(label["inside"] for label in tradeoff), tradeoff
    for figure_id in ("figure-4", "figure-5"):
        for axis in ("y", "x"):
            labels = tick_labels(figure_id, axis)
            assert sorted(label["text"] for label in labels) == sorted(names.values()), (figure_id, axis, labels)
            assert all(label["inside"] for label in labels), (figure_id, axis, labels)
    bars = tick_labels("figure-3", "y")
    assert "100%" in [label["text"] for label in bars] and all(label["inside"] for label in bars), bars
    assert all(label["inside"] for label in tick_labels("figure-3", "x"))
    colours = page.evaluate("""() => [...document.querySelectorAll('#figure-6 .scatterlayer .trace .js-line')]
                                       .map(line => getComputedStyle(line).stroke)""")
    assert len(colours) == 4 and len(set(colours)) == 4, colours  # loss, cross-entropy and the two dispersions
    context.close()


def test_two_tabs_one_queue_each_knows_its_own_job(browser, tmp_path):
    """Two browser tabs (two sessions) start a run each: one runs, one waits; each tab tells its
    own job from the other's, Start is off while one's own run is going, the sidebar counts both
    and whose they are, and cancelling the other tab's job asks first. The Japanese page shows no English of the
    uploader."""
    from dapt_core.studio.workspace import Workspace

    task = write_colour_task(tmp_path / "colours", per_class=4, size=40)
    workspace = Workspace(tmp_path / "workspace")
    project = workspace.create_project("Queue line", ["red", "blue"])
    for name in ("red", "blue"):
        project.add_image_paths(name, sorted((task / name).glob("*.png")))
    server = Server(workspace.root, tmp_path / "server.log").start()
    pages = []
    try:
        for _ in range(2):
            context, page = open_page(browser, f"{server.url}/tune?project={project.id}")
            expect(page.get_by_text("Weights available")).to_be_visible(timeout=180_000)
            open_advanced(page, "Epochs (0 = the recipe's 100)")
            fill_number(page, "Epochs (0 = the recipe's 100)", 2000)  # still running below
            settle(page)
            pages.append(page)
        first, second = pages
        for page in pages:
            page.get_by_role("button", name="Start tuning").click()
            expect(page.get_by_text("· yours")).to_be_visible(timeout=60_000)
            settle(page)
            expect(page.get_by_role("button", name="Start tuning")).to_be_disabled()
            expect(page.get_by_text("Your run is still going").first).to_be_visible()
        expect(second.get_by_text("place 1 in the queue")).to_be_visible()
        expect(second.get_by_text("Jobs: 1 running, 1 waiting (1 of them yours)")).to_be_visible()
        for page in pages:  # the cards follow by themselves (they poll)
            expect(page.get_by_text("· yours")).to_have_count(1, timeout=30_000)
            expect(page.get_by_text("· started in another session")).to_have_count(1, timeout=30_000)
        second.screenshot(path=str(tmp_path / "two-tabs.png"), full_page=True)
        print(f"\nscreenshot of the second tab: {tmp_path / 'two-tabs.png'}")

        # the second tab cancels the first tab's job (the first card: submitted first): it is asked
        second.get_by_role("button", name="Cancel").first.click()
        expect(second.get_by_text("Someone started this job in another browser tab")).to_be_visible()
        second.get_by_role("button", name="No, let it run").click()
        expect(second.get_by_text("Someone started this job in another browser tab")).to_have_count(0)
        expect(first.get_by_text("/2000 · step")).to_be_visible(timeout=60_000)  # still training
        # each cancels its own at once, and Start comes back
        second.get_by_role("button", name="Cancel").last.click()  # its own waiting job: the second card
        expect(second.get_by_text("Nothing was saved")).to_be_visible(timeout=60_000)
        # the first tab's page redraws when a job it shows ends, and its sidebar counts again
        expect(first.get_by_text("Jobs: 1 running, 0 waiting (1 of them yours)")).to_be_visible(timeout=60_000)
        first.get_by_role("button", name="Cancel").first.click()  # its own running job: the first card
        expect(first.get_by_text("Nothing was saved").first).to_be_visible(timeout=60_000)
        expect(first.get_by_role("button", name="Start tuning")).to_be_enabled(timeout=30_000)
        assert workspace.project(project.id).runs() == []

        # the Japanese page: Streamlit's uploader words in Japanese
        first.goto(f"{server.url}/?project={project.id}&lang=ja")
        expect(first.get_by_text("プロジェクトとデータ").first).to_be_visible(timeout=60_000)
        expect(first.get_by_text(re.compile(r"デバイス: CPU\(\d+ スレッド\)"))).to_be_visible()  # not "threads"
        # a class's uploader (the last one shown: "What to label next" holds another, folded away)
        expect(first.locator('[data-testid="stFileUploaderDropzoneInstructions"]:visible').last).to_be_visible()
        words = first.evaluate("""() => [...document.querySelectorAll(
            '[data-testid=stFileUploaderDropzone] button p, [data-testid=stFileUploaderDropzoneInstructions] span')]
            .map(e => [getComputedStyle(e).fontSize, getComputedStyle(e, '::after').content])""")
        assert words and all(size == "0px" and content not in ("none", "normal") for size, content in words), words
        assert {content for _, content in words} == {'"アップロード"', '"1ファイル 500MB まで"'}
        first.screenshot(path=str(tmp_path / "japanese.png"), full_page=True)
        print(f"screenshot of the Japanese page: {tmp_path / 'japanese.png'}")
    finally:
        server.stop()



def test_the_demo_project_gives_the_command_lines_numbers(browser, tmp_path):
    """The one-click demo project, tuned in the browser at the page's defaults (1 epoch, to keep the
    test short), shows the numbers `dapt tune` gets on `dapt demo-data`'s folder with the same
    settings: the demo task's own train/test split, the same seed, the same library."""
    from dapt_core.data.folders import load_split
    from dapt_core.demo.demo_task import write_demo_task
    from dapt_core.engine.backbone import load_backbone
    from dapt_core.engine.experiment import run_experiment
    from dapt_core.engine.methods import TuningConfig
    from ui.narrative import pct

    server = Server(tmp_path / "workspace", tmp_path / "server.log").start()
    try:
        context, page = open_page(browser, server.url)
        page.get_by_role("button", name="Try the demo task").click()
        expect(page.get_by_text("no defect — 216 images")).to_be_visible(timeout=300_000)
        page.get_by_role("link", name="Tune", exact=True).click()
        expect(page.get_by_text("Weights available")).to_be_visible(timeout=180_000)
        expect(page.get_by_label("Training images per class (shots)", exact=True)).to_have_value("16")
        # the task's own held-out set, said once under the split table (every class has its test/ folder)
        expect(page.get_by_text("Test photos: each class's own test/ folder")).to_be_visible()
        open_advanced(page, "Epochs (0 = the recipe's 200)")
        fill_number(page, "Epochs (0 = the recipe's 200)", 1)
        settle(page)
        page.get_by_role("button", name="Start tuning").click()
        saved = page.get_by_text("Run saved")
        expect(saved).to_be_visible(timeout=600_000)
        headline = saved.inner_text()
        context.close()
    finally:
        server.stop()

    folder = write_demo_task(tmp_path / "demo-data")["out_dir"]  # `dapt demo-data DIR`
    split = load_split(folder, 16, 1)  # `dapt tune DIR --backbone demo --epochs 1`: 16 shots, seed 1
    cli = run_experiment(load_backbone(BACKBONE, "cpu"), split, TuningConfig(epochs=1), shots=16).metrics()
    print(f"\napp: {headline}\ncli: {pct(cli['zero_shot_accuracy'])} zero-shot -> {pct(cli['accuracy'])} tuned")
    assert f"accuracy {pct(cli['zero_shot_accuracy'])} zero-shot → {pct(cli['accuracy'])} tuned" in headline
    assert f"on {cli['n_test']} held-out images" in headline


def test_the_japanese_chart_toolbar_and_an_unknown_photo_in_a_real_browser(browser, tmp_path):
    """What a user sees that AppTest cannot: the tooltips of a chart's mode bar (Plotly's own and the
    full-screen button Streamlit adds) in Japanese, and an unknown photo tried on Export shown with
    no percentage as its confidence."""
    import numpy as np
    from PIL import Image

    from dapt_core.studio import job_queue, jobs
    from dapt_core.studio.workspace import Workspace

    task = write_colour_task(tmp_path / "colours", per_class=12, size=40)  # 27 test photos: calibrated
    workspace = Workspace(tmp_path / "workspace")
    project = workspace.create_project("Line words", ["red", "green", "blue"])
    for name in ("red", "green", "blue"):
        project.add_image_paths(name, sorted((task / name).glob("*.png")))
    job = job_queue.JobQueue().submit(jobs.TuneRequest(str(workspace.root), project.id, BACKBONE,
                                                  {"method": "dapt", "epochs": 2, "batch_size": 8}, shots=3))
    assert job.wait(300) and job.snapshot().state == job_queue.DONE, job.snapshot().error
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(noise)

    server = Server(workspace.root, tmp_path / "server.log").start()
    try:
        context, page = open_page(browser, f"{server.url}/inspect?project={project.id}")
        page.goto(f"{server.url}/inspect?project={project.id}&lang=ja")
        expect(page.get_by_text("プロジェクトとデータ").first).to_be_visible(timeout=60_000)
        chart = page.locator(".js-plotly-plot").first
        expect(chart).to_be_visible(timeout=120_000)
        chart.hover()
        page.locator(".modebar-btn").first.wait_for(state="attached")
        tooltips = page.evaluate("""() => [...document.querySelectorAll('.modebar-btn')]
                                          .map(b => getComputedStyle(b, '::after').content)""")
        assert '"全画面表示"' in tooltips and '"PNG 画像として保存"' in tooltips, tooltips
        assert not [text for text in tooltips if re.search(r"[a-z]{3}", text)], tooltips  # no English words
        context.close()

        context, page = open_page(browser, f"{server.url}/export?project={project.id}")
        uploader(page, "Photos to try").set_input_files([str(noise)])
        cells = page.locator('[data-testid="stDataFrame"]').first.locator("[role=gridcell]")
        expect(cells.filter(has_text="noise.png")).to_have_count(1, timeout=120_000)
        row = cells.all_inner_texts()
        assert row[1].startswith("Unknown: unlike the training photos (closest class: "), row
        assert not [text for text in row if text.endswith("%")], row  # no class probability as a confidence
        context.close()
    finally:
        server.stop()
