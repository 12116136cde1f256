"""Four people on one app server at once: each signs in, creates a project, imports a ZIP of the demo task and
starts a short tuning run at the same moment; all four runs finish.

    .venv/bin/python benchmarks/shared_load.py [--users 4] [--epochs 1] [--per-class 8]

One `streamlit run app.py` (tests/streamlit_server.Server) on a temporary workspace with local accounts
(dapt_core.studio.accounts), one Chromium (Debian's) with a browser context per user, driven concurrently
(Playwright's async API). Printed per user: sign-in to import done, the wait in the queue, the run time (as
the browser saw the job card change: the card redraws every ui.widgets.PROGRESS_SECONDS, so each is +-3 s),
and the order the runs started in; then the server process's peak and final resident memory
(VmRSS, sampled from /proc/PID/status every 0.5 s). It fails when a user's project list shows
another user's project, or a run does not finish.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from streamlit_server import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402

from dapt_core.demo.demo_task import CLASSES, demo_png  # noqa: E402
from dapt_core.studio.accounts import Accounts  # noqa: E402
from ui.i18n import t  # noqa: E402

PASSWORD = "a long enough password"
POLL_SECONDS = 0.5


def en(key: str, **params) -> str:
    return t(key, lang="en", **params)


def demo_zip(per_class: int) -> bytes:
    """The demo task's first `per_class` training and test photos of each class, as train/ and test/ folders."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for part in ("train", "test"):
            for class_name in CLASSES:
                for index in range(per_class):
                    archive.writestr(f"{part}/{class_name}/{index:03d}.png", demo_png(0, part, class_name, index))
    return buffer.getvalue()


class MemorySampler:
    """The resident memory of one process, read from /proc/PID/status every POLL_SECONDS in a thread."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_kb = 0
        self.last_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def _run(self):
        while not self._stop.is_set():
            try:
                self.last_kb = self.rss_kb()
            except OSError:
                return
            self.peak_kb = max(self.peak_kb, self.last_kb)
            self._stop.wait(POLL_SECONDS)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(5)


@dataclass
class UserRun:
    name: str
    project: str
    signed_in: float = 0.0
    imported: float = 0.0
    clicked: float = 0.0
    running: float | None = None
    done: float | None = None
    failed: str | None = None
    place: int | None = None  # the first place in the queue the card told, None if it never waited
    listed: list[str] = field(default_factory=list)
    audit_seconds: float | None = None  # tune_started to tune_finished in the project's audit log (1 s steps)


async def settle(page) -> None:
    await page.wait_for_timeout(300)
    await page.locator('[data-testid="stStatusWidget"]').filter(has_text="Running").wait_for(state="hidden",
                                                                                             timeout=300_000)
    await page.wait_for_timeout(200)


async def sign_in(page, url: str, name: str) -> None:
    await page.goto(url)
    await page.get_by_label(en("signin.name"), exact=True).fill(name)
    await page.get_by_label(en("signin.password"), exact=True).fill(PASSWORD)
    await page.get_by_role("button", name=en("signin.submit")).click()
    await page.get_by_text(en("projects.title")).first.wait_for(timeout=300_000)
    await settle(page)


async def create_and_import(page, run: UserRun, archive: Path) -> None:
    await page.get_by_label(en("projects.new_name"), exact=True).fill(run.project)
    await page.get_by_role("button", name=en("projects.create")).click()
    await page.get_by_role("heading", name=run.project).wait_for(timeout=300_000)
    await settle(page)
    await page.get_by_text(en("data.zip_title")).click()
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text=en("data.zip_upload"))
    await uploader.locator('input[type="file"]').set_input_files(str(archive))
    summary = en("data.intake_added", n="#", detail="").split("#")[0]  # the upload summary's first words
    await page.get_by_text(summary).first.wait_for(timeout=600_000)
    await settle(page)


async def open_page(page, title_key: str) -> None:
    """Another page by the sidebar's link: a page load would start a new session, signed out."""
    await page.get_by_role("link", name=en(title_key), exact=True).click()
    await settle(page)


async def prepare_tuning(page, epochs: int, shots: int) -> None:
    await open_page(page, "nav.tune")
    await page.get_by_role("button", name=en("tune.start")).wait_for(timeout=300_000)
    await settle(page)
    shots_field = page.get_by_label(en("tune.shots"), exact=True)
    await shots_field.fill(str(shots))
    await shots_field.press("Enter")
    await settle(page)
    await page.get_by_text(en("tune.advanced")).click()
    epochs_label = en("tune.epochs", recipe="#").split("#")[0]  # the recipe's number follows
    epochs_field = page.get_by_role("spinbutton", name=epochs_label, exact=False)
    await epochs_field.fill(str(epochs))
    await epochs_field.press("Enter")
    await settle(page)
    start = page.get_by_role("button", name=en("tune.start"))
    await start.wait_for()
    for _ in range(600):  # the check before Start may still be running: wait until Start is enabled
        if await start.is_enabled():
            return
        await page.wait_for_timeout(500)
    raise RuntimeError("Start tuning stayed disabled")


async def follow(page, run: UserRun) -> None:
    """The job card's state as the browser shows it, until the run is saved or fails."""
    queued_text = en("job.queued", device="#", place=9).split("#")[0]  # each text's words before its first value
    done_text = en("tune.done", before="#", after="#", n=1, seconds="1").split("#")[0]
    failed_text = en("job.failed", error="#").split("#")[0]
    place_pattern = re.escape(en("job.queued", device="#", place=999)).replace("999", r"(\d+)").replace("\\#", ".+?")
    live = page.locator(".st-key-tune-live")
    deadline = time.time() + 1800
    while time.time() < deadline:
        text = await live.inner_text()
        now = time.time()
        if done_text in text:
            run.done = now
            run.running = run.running or now
            return
        if failed_text in text:
            run.failed = text[:300]
            return
        if run.place is None and queued_text in text:
            found = re.search(place_pattern, text)
            run.place = int(found.group(1)) if found else None
        if run.running is None and queued_text not in text and await live.locator('[data-testid="stProgress"]').count():
            run.running = now
        await asyncio.sleep(POLL_SECONDS)
    run.failed = "did not finish in 30 minutes"


async def listed_projects(page) -> list[str]:
    """The names in this user's project picker."""
    await open_page(page, "nav.projects")
    await page.get_by_text(en("projects.title")).first.wait_for()
    picker = page.locator('[data-testid="stSelectbox"]').filter(has_text=en("projects.open"))
    await picker.click()
    options = page.locator('[role="option"]')
    await options.first.wait_for()
    names = [text.strip() for text in await options.all_inner_texts()]
    await page.keyboard.press("Escape")
    return names


async def one_user(browser, url: str, run: UserRun, archive: Path, start_together: asyncio.Barrier, args) -> None:
    context = await browser.new_context(viewport={"width": 1500, "height": 1100})
    page = await context.new_page()
    page.set_default_timeout(300_000)
    began = time.time()
    await sign_in(page, url, run.name)
    run.signed_in = time.time() - began
    await create_and_import(page, run, archive)
    run.imported = time.time() - began
    await prepare_tuning(page, args.epochs, args.shots)
    await start_together.wait()
    await page.get_by_role("button", name=en("tune.start")).click()
    run.clicked = time.time()
    await follow(page, run)
    run.listed = await listed_projects(page)
    await context.close()


async def drive(url: str, runs: list[UserRun], archive: Path, args) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        barrier = asyncio.Barrier(len(runs))
        await asyncio.gather(*(one_user(browser, url, run, archive, barrier, args) for run in runs))
        await browser.close()


def audit_seconds(workspace: Path, project_name: str) -> float | None:
    """Seconds from the tuning run's start (its submission) to its end, from the project's audit log."""
    from datetime import datetime

    for manifest in (workspace / "projects").glob("*/project.json"):
        if json.loads(manifest.read_text(encoding="utf-8")).get("name") != project_name:
            continue
        times = {}
        for line in (manifest.parent / "audit.jsonl").read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            times.setdefault(entry["action"], datetime.fromisoformat(entry["time"]))
        if "tune_started" in times and "tune_finished" in times:
            return (times["tune_finished"] - times["tune_started"]).total_seconds()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=4)
    # Few photos and epochs, yet long enough runs (seconds) that the card's 3 s redraw can tell waiting from running.
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=8, help="demo photos per class in train/ and in test/")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dapt-shared-load-") as folder:
        folder = Path(folder)
        workspace = folder / "workspace"
        accounts = Accounts(workspace)
        runs = [UserRun(f"user{i + 1}", f"Line {i + 1} of user{i + 1}") for i in range(args.users)]
        for run in runs:
            accounts.add(run.name, PASSWORD)
        archive = folder / "demo.zip"
        archive.write_bytes(demo_zip(args.per_class))
        server = Server(workspace, folder / "server.log").start()
        sampler = MemorySampler(server.process.pid).start()
        try:
            asyncio.run(drive(server.url, runs, archive, args))
            after_kb = sampler.rss_kb()
            for run in runs:
                run.audit_seconds = audit_seconds(workspace, run.project)
        finally:
            sampler.stop()
            log = server.log_text()
            server.stop()

    order = sorted((run for run in runs if run.running is not None), key=lambda run: run.running)
    print(f"{args.users} users, demo task {args.per_class} photos per class in train/ and test/, "
          f"{args.shots} shots, {args.epochs} epoch(s), one server, one queue (times as the browser saw them)")
    print(f"{'user':8} {'sign-in':>8} {'->import':>9} {'queued':>8} {'run':>8} {'place':>6} {'order':>6} "
          f"{'audit':>6}  sees")
    for run in runs:
        waited = "–" if run.running is None else f"{run.running - run.clicked:.1f}s"
        took = "–" if run.done is None or run.running is None else f"{run.done - run.running:.1f}s"
        place = order.index(run) + 1 if run in order else "–"
        told = "–" if run.place is None else run.place
        audit = "–" if run.audit_seconds is None else f"{run.audit_seconds:.0f}s"
        print(f"{run.name:8} {run.signed_in:7.1f}s {run.imported:8.1f}s {waited:>8} {took:>8} {told!s:>6} {place!s:>6} "
              f"{audit:>6}  {run.listed}")
    print("queued/run: as the browser saw the card (+-3 s); place: the place in the queue the card first told; "
          "audit: started to finished in the project's audit log")
    print(f"server RSS: peak {sampler.peak_kb / 1024:.0f} MiB, after all finished {after_kb / 1024:.0f} MiB")
    problems = [f"{run.name}: {run.failed}" for run in runs if run.failed or run.done is None]
    problems += [f"{run.name} sees {sorted(set(run.listed) - {run.project})}" for run in runs
                 if set(run.listed) - {run.project}]
    if problems:
        print("PROBLEMS:\n  " + "\n  ".join(problems))
        print(log[-2000:])
        sys.exit(1)


if __name__ == "__main__":
    main()
