"""How much of an upload the app server keeps in memory: ZIP imports (or photo uploads) through Chromium,
one after another in one browser session, with the server's resident memory read after each.

    .venv/bin/python benchmarks/server_memory.py [--mb 200] [--uploads 3] [--via zip|photos]

One `streamlit run app.py` (tests/streamlit_server.Server) on a temporary workspace with one project; each
upload is a different set of 600 x 600 noise PNGs (incompressible, about 1 MB each; `--mb` of them), as a ZIP of
class folders through "Import a ZIP" or as files through a class's uploader. Printed: the server's resident
memory (VmRSS) once the page is up, after each upload is stored (and the app has rerun), after a reload, and
its peak; then the ratio that matters, memory kept per MB uploaded ((after the last upload - before the first)
/ MB uploaded). Before ui/uploads.release, Streamlit kept every uploaded file for the session's whole life:
about 400 MB kept per 200 MB ZIP (ratio ~1.7 over three).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from shared_load import MemorySampler  # noqa: E402
from streamlit_server import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402

from dapt_core.studio.workspace import Workspace  # noqa: E402

CLASSES = ("good", "scratch")
SIDE = 600  # pixels: a noise PNG of about 1 MB


def noise_photos(folder: Path, megabytes: int, seed: int) -> list[Path]:
    """Different noise PNGs (about 1 MB each) until `megabytes` are written, alternating between the classes."""
    rng = np.random.default_rng(seed)
    paths, written = [], 0
    while written < megabytes * 2**20:
        path = folder / CLASSES[len(paths) % 2] / f"{seed}-{len(paths):04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)).save(path)
        written += path.stat().st_size
        paths.append(path)
    return paths


def as_zip(paths: list[Path], root: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for path in paths:
            archive.write(path, path.relative_to(root).as_posix())
    return out


def mb(kb: int) -> float:
    return kb / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="megabytes per upload (default 200)")
    parser.add_argument("--uploads", type=int, default=3)
    parser.add_argument("--via", choices=("zip", "photos"), default="zip")
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory(prefix="dapt-server-memory-") as scratch:
        scratch = Path(scratch)
        batches, photos_in = [], []
        for k in range(args.uploads):
            folder = scratch / f"batch{k}"
            paths = noise_photos(folder, args.mb, seed=k)
            batches.append([as_zip(paths, folder, scratch / f"batch{k}.zip")] if args.via == "zip" else paths)
            photos_in.append(len(paths))
        uploaded_mb = [sum(p.stat().st_size for p in batch) / 2**20 for batch in batches]
        workspace = Workspace(scratch / "workspace")
        project = workspace.create_project("Memory", CLASSES)

        def stored() -> int:
            return sum(workspace.project(project.id).counts().values())
        server = Server(scratch / "workspace", scratch / "server.log").start()
        sampler = None
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1400, "height": 1800})
                page.goto(f"{server.url}/?project={project.id}")
                page.get_by_text("Import a ZIP with one folder per class").first.wait_for(timeout=120_000)
                page.wait_for_timeout(3000)
                sampler = MemorySampler(server.process.pid).start()
                before = sampler.rss_kb()
                print(f"server memory with the page up: {mb(before):.0f} MB", flush=True)
                if args.via == "zip":
                    page.get_by_text("Import a ZIP with one folder per class").first.click()
                for k, batch in enumerate(batches):
                    label = "ZIP archive" if args.via == "zip" else "Add images to 'scratch'"
                    started = time.perf_counter()
                    page.locator('[data-testid="stFileUploader"]').filter(has_text=label) \
                        .locator('input[type="file"]').set_input_files([str(p) for p in batch])
                    while stored() < sum(photos_in[:k + 1]):  # the server writes each photo as it is checked
                        page.wait_for_timeout(250)
                    expect(page.get_by_text("Last upload", exact=False).first).to_be_visible(timeout=120_000)
                    page.wait_for_timeout(4000)  # the rerun after the intake
                    seconds = time.perf_counter() - started
                    print(f"upload {k + 1} ({uploaded_mb[k]:.0f} MB, {seconds:.1f} s): server memory "
                          f"{mb(sampler.rss_kb()):.0f} MB", flush=True)
                    close = page.get_by_role("button", name="Close this summary")
                    if close.count():
                        close.first.click()
                        page.wait_for_timeout(1500)
                after = sampler.rss_kb()
                page.reload()
                page.wait_for_timeout(8000)
                print(f"after a reload: {mb(sampler.rss_kb()):.0f} MB; peak {mb(sampler.peak_kb):.0f} MB")
                browser.close()
        finally:
            if sampler is not None:
                sampler.stop()
            server.stop()
        photos = stored()
    total = sum(uploaded_mb)
    print(f"{photos} photos stored from {total:.0f} MB in {args.uploads} upload(s) via {args.via}")
    print(f"memory kept per MB uploaded: {mb(after - before) / total:.2f} "
          f"({mb(after - before):.0f} MB kept of {total:.0f} MB uploaded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
