"""Names people type are shown as text on every page and in the report, never as Markdown or HTML.

A project, two classes and a photo are named with Markdown and HTML that would fetch from a little HTTP
server of the test's own (an image in a name makes every visitor's browser ask for it), make links, bold
text, colour, LaTeX and an icon. Every page of the app and the exported report are opened in Chromium:
the server is never asked for anything, the browser asks for no "beacon" anywhere, no script runs, and
each name can be read on the page exactly as it was typed.
"""

from __future__ import annotations

import http.server
import os
import threading
from pathlib import Path

import pytest
from conftest import write_colour_task
from streamlit_server import CHROMIUM, CHROMIUM_ARGS, Server, free_port

if not Path(CHROMIUM).exists():
    if os.environ.get("DAPT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{CHROMIUM} is missing and DAPT_REQUIRE_BROWSER=1: run scripts/browser.sh", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (install it with scripts/browser.sh)", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from ui.i18n import t  # noqa: E402
from ui.plain_text import WORD_JOINER  # noqa: E402

expect.set_options(timeout=60_000)
BACKBONE = os.environ.get("DAPT_TEST_BACKBONE", "demo")


class Beacon:
    """A local HTTP server that only counts what it is asked for."""

    def __init__(self):
        self.requests: list[str] = []
        beacon = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                beacon.requests.append(self.path)
                self.send_response(404)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _names(port: int) -> dict[str, str]:
    url = f"http://127.0.0.1:{port}"
    # Within the limits: 100 characters for a project's name; a class's name and 4 context tokens fit in the
    # demo text encoder's 32 tokens.
    return {
        "project": f"![p]({url}/p.png) **b** :material/home: $x^2$ [l]({url}/l)",
        "good": f"![g]({url}/g)",
        "defect": "<img src=x onerror=alert(1)> ~~s~~ <b>y</b>",
        # a file name keeps nothing before a "/": a relative image address would be asked of the app's server
        "file": "![f](beacon-file.png) **f** :smile: :red[r] #1.png",
    }


def _shown(page) -> str:
    """The page's text as a reader sees it (the invisible joiners of ui.plain_text left out)."""
    return page.locator("body").inner_text().replace(WORD_JOINER, "")


def _project(workspace_root: Path, names: dict, tmp_path: Path) -> str:
    """A project named with the payloads, two classes, photos (one with a payload name) and a tuned run."""
    from dapt_core.studio import job_queue, jobs
    from dapt_core.studio.workspace import Workspace

    task = write_colour_task(tmp_path / "colours", per_class=6, size=40)
    workspace = Workspace(workspace_root)
    project = workspace.create_project(names["project"], [names["good"], names["defect"]])
    reds = sorted((task / "red").glob("*.png"))
    project.add_images(names["good"], [(names["file"], reds[0]), *((p.name, p) for p in reds[1:])])
    project.add_image_paths(names["defect"], sorted((task / "blue").glob("*.png")))
    project.set_good_class(names["good"])
    settings = {"method": "dapt", "epochs": 2, "batch_size": 8, "n_ctx": 4}
    job = job_queue.JobQueue().submit(jobs.TuneRequest(str(workspace.root), project.id, BACKBONE, settings, shots=3,
                                                       make_projection=False))
    assert job.wait(300) and job.snapshot().state == job_queue.DONE, job.snapshot().error
    return project.id


def test_names_are_text_on_every_page_and_in_the_report(tmp_path):
    beacon = Beacon()
    names = _names(beacon.port)
    project_id = _project(tmp_path / "workspace", names, tmp_path)
    server = Server(tmp_path / "workspace", tmp_path / "server.log").start()
    asked, dialogs = [], []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(accept_downloads=True, viewport={"width": 1500, "height": 1100})
            page = context.new_page()
            page.set_default_timeout(120_000)
            page.on("request", lambda request: asked.append(request.url))
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

            # Projects: the name as the page's heading, the classes as expander titles, the photo's caption.
            page.goto(f"{server.url}/?project={project_id}")
            expect(page.get_by_text(t("projects.title", lang="en")).first).to_be_visible(timeout=90_000)
            page.get_by_text(t("review.title", lang="en")).first.wait_for()  # drawn near the end of the page
            # the photo's caption, shortened (with …), once its thumbnail has come
            expect(page.locator('[data-testid="stImageCaption"]').filter(has_text=names["file"][:20])).to_have_count(1)
            shown = _shown(page)
            for key in ("project", "good", "defect"):
                assert names[key] in shown, (key, names[key])

            # Tune, Inspect and Export: each names the project; Tune's pass/fail setting names the good class.
            for path, waits_for in (("tune", "tune.start"), ("inspect", "inspect.mistakes_title"),
                                    ("export", "export.report_download")):
                page.goto(f"{server.url}/{path}?project={project_id}")
                page.get_by_text(t(waits_for, lang="en")).first.wait_for()
                shown = _shown(page)
                assert f"Project: {names['project']}" in shown, path
                if path == "tune":
                    assert names["good"] in shown

            with page.expect_download() as download:
                page.get_by_text(t("export.report_download", lang="en")).first.click()
            report = tmp_path / "report.html"
            download.value.save_as(report)
            page.goto(report.as_uri())
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 4")
            shown = _shown(page)
            assert names["project"] in page.locator("h1").inner_text()
            assert names["good"] in shown and names["defect"] in shown
            # Plotly draws some HTML in chart text (a link, bold): the class names stay literal there too
            legends = page.locator(".js-plotly-plot .legendtext").all_text_contents()
            assert names["good"] in legends and names["defect"] in legends, legends
            assert names["defect"] in page.locator(".js-plotly-plot .xtick").all_text_contents()
            assert page.locator(".js-plotly-plot a").count() == 0  # no link in any chart (from a name)
            context.close()
            browser.close()
    finally:
        server.stop()
        beacon.close()
    assert beacon.requests == []
    assert [url for url in asked if "beacon" in url or f":{beacon.port}" in url] == []
    assert dialogs == []
