"""The Export page's drift check in a real browser (one server, the demo data, the demo model): a run made
through the library first; darkened photos of the line give the verdict "drift" with where it starts, fresh
photos of the same line give "no drift", each with the chart of the windows."""

from __future__ import annotations

import io

from PIL import Image, ImageEnhance
from playwright.sync_api import expect
from test_browser import BACKBONE, app_page, browser, fill_number, settle, uploader  # noqa: F401 (a fixture)

from dapt_core.demo import demo_task
from dapt_core.studio import drift_check, job_queue, jobs
from dapt_core.studio.workspace import Workspace

PHOTOS = 60  # three windows of 20
WINDOW = 20


def project_with_a_run(workspace: Workspace):
    """The demo task with 16 training and 30 held-out photos per class (150 calibrate the run), tuned briefly."""
    project = workspace.create_project("Drift line", demo_task.CLASSES)
    for name in demo_task.CLASSES:
        for part, count in (("train", 16), ("test", 30)):
            project.add_images(name, [(f"{part}-{i:03d}.png", demo_task.demo_png(0, part, name, i))
                                      for i in range(count)], part=part, remember=False)
    job = job_queue.JobQueue().submit(jobs.TuneRequest(str(workspace.root), project.id, BACKBONE,
                                                       {"method": "dapt", "epochs": 2, "batch_size": 16}, shots=16,
                                                       make_projection=False))
    assert job.wait(300) and job.snapshot().state == job_queue.DONE, job.snapshot().error
    return project


def line_photos(folder, brightness: float = 1.0) -> list[str]:
    """Fresh photos of the line (another seed), the classes interleaved as parts come down a line; darker
    than the calibration photos where `brightness` < 1 (a failing lamp)."""
    folder.mkdir()
    paths = []
    for i in range(PHOTOS):
        name = demo_task.CLASSES[i % len(demo_task.CLASSES)]
        image = Image.fromarray(demo_task.render_demo_image(101, "test", name, i // len(demo_task.CLASSES)))
        if brightness != 1.0:
            image = ImageEnhance.Brightness(image).enhance(brightness)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        path = folder / f"photo-{i:03d}.png"
        path.write_bytes(buffer.getvalue())
        paths.append(str(path))
    return paths


def check(page, photos: list[str]) -> None:
    uploader(page, "New photos from the line").set_input_files(photos)
    settle(page)
    page.get_by_role("button", name="Check for drift").click()


def test_darkened_photos_drift_and_fresh_ones_do_not(browser, tmp_path):  # noqa: F811
    from streamlit_server import Server

    workspace = Workspace(tmp_path / "workspace")
    project = project_with_a_run(workspace)
    run = project.run(project.run_ids()[0])
    dark = line_photos(tmp_path / "dark", brightness=0.6)
    fresh = line_photos(tmp_path / "fresh")
    server = Server(workspace.root, tmp_path / "server.log").start()
    with app_page(browser, server, f"{server.url}/export?project={project.id}", tmp_path) as page:
        expect(page.get_by_text("Drift: is the line still what the model was calibrated on?")).to_be_visible(
            timeout=90_000)
        fill_number(page, "Photos per window", WINDOW)
        settle(page)
        check(page, dark)
        verdict = page.get_by_text("Drift: from photo 1 (photo-000.png) on, the photos look different")
        expect(verdict).to_be_visible(timeout=120_000)
        expect(page.get_by_text("re-tune with new photos", exact=False)).to_be_visible()
        expect(page.locator(".js-plotly-plot")).to_have_count(1)
        kept = drift_check.load_last(run)
        assert kept["report"]["drift"] and kept["photos"] == PHOTOS and len(kept["report"]["windows"]) == 3
        verdict.scroll_into_view_if_needed()
        settle(page)
        page.screenshot(path=str(tmp_path / "drift.png"))
        print(f"\nscreenshot of drift: {tmp_path / 'drift.png'}")

        check(page, fresh)
        calm = page.get_by_text("No drift: the line looks like what the model was calibrated on")
        expect(calm).to_be_visible(timeout=120_000)
        assert not drift_check.load_last(run)["report"]["drift"]
        calm.scroll_into_view_if_needed()
        settle(page)
        page.screenshot(path=str(tmp_path / "no-drift.png"))
        print(f"screenshot of no drift: {tmp_path / 'no-drift.png'}")
