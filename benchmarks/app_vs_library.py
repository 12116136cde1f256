"""Does watching slow tuning down? The same tuning run through the app, watched by N browser tabs,
against the library in this process.

Starts `streamlit run app.py` on a free localhost port with a temporary workspace holding the demo
project, opens N headless Chromium tabs on the Tune page, presses Start in the first (for N = 0 the
tab that pressed Start is closed at once), and reads the run's `train_seconds` from its saved
metrics. The reference is the same request (the same settings, split and seed) tuned by
`dapt_core.engine.experiment.run_experiment` here, as `dapt tune` does. Each app run is paired with a
library run right before it, so both see the same machine load; the ratio is app / library.

    python benchmarks/app_vs_library.py                      # 16 shots, 50 epochs (150 steps), N = 0, 1, 2
    python benchmarks/app_vs_library.py --shots 2 --epochs 20 --repeat 3 --tabs 0 2
    python benchmarks/app_vs_library.py --queued             # also: N = 2 tabs and a second job queued

The default run is long enough (about 20 s here) that a tab opened while it runs is part of the
run, as in use, not most of it: with 1-shot, 50-step runs of 2 s, opening the second tab alone
made the ratio. Each row also prints the CPU seconds the server and the browser used during the
app's run, and the server's during the library run (it should be idle then).

The server inherits this process's environment (OMP_NUM_THREADS and the like), so both sides
run under the same thread settings. Needs /usr/bin/chromium and playwright.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's dapt_core, and the server helper

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from playwright.sync_api import sync_playwright  # noqa: E402
from streamlit_server import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402

from dapt_core.engine.backbone import load_backbone  # noqa: E402
from dapt_core.engine.experiment import run_experiment  # noqa: E402
from dapt_core.engine.methods import TuningConfig  # noqa: E402
from dapt_core.studio.jobs import TuneRequest  # noqa: E402
from dapt_core.studio.projection import settings_key  # noqa: E402
from dapt_core.studio.workspace import Workspace  # noqa: E402

JOB_TIMEOUT = 900.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    """Every live process's children, from /proc (no psutil on the user's machine)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of a process and its descendants. Only live processes count, so
    read it before a tab closes."""
    children, total, todo = _children(), 0.0, [root]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        todo += children.get(pid, [])
    return total


def page_settings(epochs: int) -> dict:
    """What the Tune page submits with its defaults (the library's) and the given epochs (0 = the recipe's)."""
    config = TuningConfig()
    return {"method": config.method, "epochs": epochs or None, "lr": config.lr, "seed": config.seed,
            "batch_size": config.batch_size, "n_ctx": config.n_ctx, "n_vis": config.n_vis, "beta_v": config.beta_v,
            "beta_t": config.beta_t}


def library_seconds(backbone, request: TuneRequest) -> float:
    config, split = request.validate()
    result = run_experiment(backbone, split, config, shots=request.shots)
    return result.tuning.train_seconds


class App:
    """The server, one browser, and the project's runs on disk."""

    def __init__(self, workspace: Workspace, project_id: str, log: Path, playwright):
        self.workspace = workspace
        self.project_id = project_id
        self.server = Server(workspace.root, log).start()
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        self.context = self.browser.new_context(viewport={"width": 1500, "height": 1100})

    def close(self) -> None:
        self.browser.close()
        self.server.stop()

    def open_tune(self):
        page = self.context.new_page()
        page.set_default_timeout(120_000)
        page.goto(f"{self.server.url}/tune?project={self.project_id}")
        page.get_by_text("Weights available").first.wait_for(state="visible")
        return page

    def warm(self) -> None:
        """First page view: the map engine compiles (~14 s of CPU) in the server; wait it out."""
        page = self.open_tune()
        deadline = time.time() + 600
        while not page.get_by_text("Map engine: ready").first.is_visible():  # the sidebar shows it on a rerun
            if time.time() > deadline:
                raise RuntimeError(f"the map engine did not get ready:\n{self.server.log_text()}")
            page.wait_for_timeout(3000)
            page.reload()
            page.get_by_text("Weights available").first.wait_for(state="visible")
        page.close()

    def runs(self):
        return [info for info in self.workspace.project(self.project_id).runs() if info.error is None]

    def cpu(self) -> tuple[float, float]:
        """CPU seconds so far of the server, and of the browser (every other child of this process)."""
        server = self.server.process.pid
        browser = [pid for pid in _children().get(os.getpid(), []) if pid != server]
        return tree_cpu_seconds(server), sum(tree_cpu_seconds(pid) for pid in browser)

    def tune(self, tabs: int, shots: int, epochs: int, jobs: int) -> tuple[list[float], float, tuple[float, float]]:
        """Train seconds of each of `jobs` runs started from one tab, watched by `tabs` tabs (the
        one that pressed Start is closed at once when tabs = 0), seconds from Start to the first
        progress bar, and the CPU seconds the server and the browser used meanwhile."""
        before = {info.id for info in self.runs()}
        cpu_before = self.cpu()
        first = self.open_tune()
        _fill(first, "Training images per class (shots)", shots)
        first.get_by_text("Advanced settings").click()
        _fill(first, "Epochs (0 = the recipe's", epochs, exact=False)
        start = first.get_by_role("button", name="Start tuning")
        clicked = time.perf_counter()
        start.click()
        first.locator('[data-testid="stProgress"]').first.wait_for(state="visible")
        to_progress = time.perf_counter() - clicked
        for _ in range(jobs - 1):
            _settle(first)
            start.click()
        pages = [first]
        if tabs == 0:
            first.close()
            pages = []
        # Further watchers arrive while the job runs, as a colleague opening the page would.
        pages += [self.open_tune() for _ in range(tabs - 1)]
        deadline = time.time() + JOB_TIMEOUT
        while True:
            new = [info for info in self.runs() if info.id not in before]
            if len(new) >= jobs:
                break
            if time.time() > deadline:
                raise RuntimeError(f"the app's jobs did not finish in {JOB_TIMEOUT:.0f} s:\n{self.server.log_text()}")
            time.sleep(0.5)
        cpu_after = self.cpu()
        self._wait_for_maps(new)
        for page in pages:
            page.close()
        new.sort(key=lambda info: info.created)
        project = self.workspace.project(self.project_id)
        used = (cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1])
        return [project.run(info.id).metrics["train_seconds"] for info in new], to_progress, used

    def _wait_for_maps(self, infos) -> None:
        """A job draws its run's map after saving it; the next measurement must not overlap that."""
        project = self.workspace.project(self.project_id)
        deadline = time.time() + 120
        while time.time() < deadline:
            if all(project.run(info.id).load_projection(settings_key()) is not None for info in infos):
                return
            time.sleep(0.5)


def _fill(page, label: str, value: int, exact: bool = True) -> None:
    field = page.get_by_role("spinbutton", name=label, exact=exact)
    field.fill(str(value))
    field.press("Enter")
    _settle(page)


def _settle(page) -> None:
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').filter(has_text="Running").wait_for(state="hidden")
    page.wait_for_timeout(200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", type=int, default=16, help="training images per class (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=50, help="0 = the recipe's (default: %(default)s)")
    parser.add_argument("--tabs", type=int, nargs="+", default=[0, 1, 2], help="tab counts to measure")
    parser.add_argument("--queued", action="store_true", help="also: N = 2 tabs with a second job queued")
    parser.add_argument("--repeat", type=int, default=2, help="app/library pairs per row (default: %(default)s)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill stops the server too

    root = Path(tempfile.mkdtemp(prefix="dapt-bench-app-"))
    workspace = Workspace(root / "workspace")
    project = workspace.create_demo_project("Benchmark")
    request = TuneRequest(str(workspace.root), project.id, "demo", page_settings(args.epochs), shots=args.shots)
    backbone = load_backbone("demo")
    library_seconds(backbone, request)  # warm-up: first-call costs belong to neither side

    rows = [(f"{n} tab{'s' if n != 1 else ''}", n, 1) for n in args.tabs]
    if args.queued:
        rows.append(("2 tabs + 1 job queued", 2, 2))
    results = []
    with sync_playwright() as playwright:
        app = App(workspace, project.id, root / "server.log", playwright)
        try:
            app.warm()
            for name, tabs, jobs in rows:
                lib, served, first = [], [], []
                for _ in range(args.repeat):
                    idle_before = app.cpu()[0]
                    lib.append(library_seconds(backbone, request))
                    idle = app.cpu()[0] - idle_before  # the server must be idle meanwhile
                    seconds, to_progress, (server_cpu, browser_cpu) = app.tune(tabs, args.shots, args.epochs, jobs)
                    served.append(seconds)
                    first.append(to_progress)
                    print(f"  {name}: library {lib[-1]:.2f} s, app " + ", ".join(f"{s:.2f}" for s in seconds)
                          + f" s; progress {to_progress:.2f} s after Start; CPU s: server {server_cpu:.1f}, "
                          f"browser {browser_cpu:.1f}; server during the library run {idle:.1f}",
                          flush=True)
                results.append((name, lib, served, first))
        finally:
            app.close()

    load = os.getloadavg()
    print(f"\n{args.shots} shot(s), epochs {args.epochs or 'recipe'}, {args.repeat} pair(s) per row, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average {load[0]:.1f} "
          f"on {os.cpu_count()} CPUs at the end")
    print(f"{'watching':<24}{'library s':>10}{'app s':>16}{'app/library':>13}{'to progress s':>15}")
    for name, lib, served, first in results:
        lib_median = statistics.median(lib)
        per_job = [statistics.median(s[j] for s in served) for j in range(len(served[0]))]
        app_text = " / ".join(f"{s:.2f}" for s in per_job)
        ratio_text = " / ".join(f"{s / lib_median:.2f}" for s in per_job)
        print(f"{name:<24}{lib_median:>10.2f}{app_text:>16}{ratio_text:>13}{statistics.median(first):>15.2f}")
    print("(medians; with a queued job, the first and the second job's numbers)")


if __name__ == "__main__":
    main()
