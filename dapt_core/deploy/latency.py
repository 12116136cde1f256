"""How fast a prompt file classifies on this machine: milliseconds per photo and peak memory.

Each engine (torch with the prompt file, ONNX Runtime with its export) is measured in a fresh
child process, so the peak memory is that engine's alone (the Python process, the libraries and
the model, as on a line PC) and one measurement does not warm up or fill memory for the next.
The time is the model's: photos already decoded, resized and cropped (decoding a JPEG adds a few
milliseconds whatever the engine). Batch 1 is a line that classifies each photo as it comes;
batch 32 is a folder of photos classified together.

    python -m dapt_core.deploy.latency ENGINE FILE --batches 1 32   # one child measurement, prints JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import DaptError

BATCHES = (1, 32)
ENGINES = ("torch", "onnx")
MIN_SECONDS = 1.0  # time each batch size for at least this long ...
MIN_REPEATS, MAX_REPEATS = 3, 50  # ... and at least this many runs, at most this many
CHILD_TIMEOUT = 900


DEFAULT_PHOTO_SIZE = (1024, 1024)  # for a tiled file when no photo size is given


def measure(prompt_path: str | Path, *, engines=ENGINES, batches=BATCHES, device: str | None = None,
            threads: int | None = None, on_progress: Callable[[str], None] | None = None,
            photo_size: tuple[int, int] | None = None) -> list[dict]:
    """One row per engine and batch size: ms_per_photo, photos_per_second, peak_memory_mb (or an error).

    A file tuned with tiles looks at each photo as the whole photo plus its tiles: its rows time all of
    a `photo_size` photo's views (DEFAULT_PHOTO_SIZE if not given) and say how many (views_per_photo).
    The ONNX engine needs onnx and onnxruntime; without them its rows say how to install them.
    """
    views, photo_size = views_per_photo(prompt_path, photo_size)
    if views > 1:  # a tiled photo is already a batch of views: one photo at a time, as a line runs it
        batches = (1,)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dapt-latency-") as tmp:
        for engine in engines:
            if on_progress is not None:
                on_progress(engine)
            try:
                target = _onnx_export(prompt_path, Path(tmp)) if engine == "onnx" else Path(prompt_path)
                rows.extend({**row, "views_per_photo": views, "photo_size": list(photo_size) if photo_size else None}
                            for row in _child(engine, target, batches, device, threads, views))
            except DaptError as error:
                rows.extend({"engine": engine, "batch": batch, "error": str(error)} for batch in batches)
    return rows


def views_per_photo(prompt_path, photo_size: tuple[int, int] | None) -> tuple[int, tuple[int, int] | None]:
    """How many views the file's model runs per photo of `photo_size` (1 without tiles), and the size."""
    from ..engine import prompt_file
    from ..engine.tiling import Tiling

    header = prompt_file.load(prompt_path).header
    tiling = Tiling.from_dict(header.get("config"))
    if not tiling.on:
        return 1, None
    photo_size = tuple(photo_size or DEFAULT_PHOTO_SIZE)
    return 1 + len(tiling.boxes(*photo_size, int(header["preprocessing"]["size"]))), photo_size


def _onnx_export(prompt_path, folder: Path) -> Path:
    from ..engine.inference import Classifier
    from .onnx_export import export_onnx

    onnx_path, _ = export_onnx(Classifier.load(prompt_path, device="cpu"), folder / "model.onnx")
    return onnx_path


def _child(engine: str, path: Path, batches, device, threads, views: int = 1) -> list[dict]:
    command = [sys.executable, "-m", "dapt_core.deploy.latency", engine, str(path),
               "--batches", *map(str, batches), "--views", str(views)]
    if device:
        command += ["--device", device]
    if threads:
        command += ["--threads", str(threads)]
    # The child must import this very dapt_core, also when it runs from a source tree.
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=CHILD_TIMEOUT, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DaptError(f"The {engine} measurement failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------- in the child process
def _run_child(engine: str, path: str, batches, device, threads, views: int = 1) -> list[dict]:
    import numpy as np

    if engine == "torch":
        import torch

        from ..engine.inference import Classifier

        if threads:
            torch.set_num_threads(threads)
        classifier = Classifier.load(path, device=device)
        size, where = classifier.preprocessing.size, classifier.model.backbone.device
        generator = torch.Generator().manual_seed(0)

        def make(batch):
            return torch.randn(batch, 3, size, size, generator=generator).to(where)

        def run(pixels):
            classifier.forward_batch(pixels)
            if where.type == "cuda":
                torch.cuda.synchronize(where)
        place = str(where)
    else:
        from .onnx_runner import OnnxClassifier

        classifier = OnnxClassifier(path, threads=threads)
        size = classifier.size
        rng = np.random.default_rng(0)

        def make(batch):
            return rng.random((batch, 3, size, size), dtype=np.float32)

        def run(pixels):
            classifier.outputs(pixels)
        place = "cpu"
    rows = []
    for batch in batches:
        pixels = make(batch * views)  # a photo's whole view and its tiles
        run(pixels)  # warm-up: first-call allocations and kernel selection
        times = []
        while len(times) < MAX_REPEATS and (len(times) < MIN_REPEATS or sum(times) < MIN_SECONDS):
            started = time.perf_counter()
            run(pixels)
            times.append(time.perf_counter() - started)
        per_photo = float(np.median(times)) / batch
        rows.append({"engine": engine, "batch": batch, "ms_per_photo": 1000 * per_photo,
                     "photos_per_second": 1.0 / per_photo, "device": place, "repeats": len(times)})
    peak = _peak_memory_mb(engine, place)
    for row in rows:
        row.update(peak)
    return rows


def _peak_memory_mb(engine: str, place: str) -> dict:
    out = {"peak_memory_mb": _peak_rss_mb()}
    if engine == "torch" and place.startswith("cuda"):
        import torch

        out["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _peak_rss_mb() -> float | None:
    """This process's peak resident memory. Linux: VmHWM, which starts afresh at exec; getrusage's
    maxrss would also count the parent's memory that the child shared when it was forked."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    try:
        import resource
    except ImportError:  # Windows: no getrusage; the table shows the memory as unknown
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)  # bytes on macOS, KiB elsewhere


def format_table(rows: list[dict]) -> str:
    """A plain-text table for the terminal."""
    lines = [f"{'engine':8} {'batch':>5} {'ms/photo':>9} {'photos/s':>9} {'peak MB':>8}  device"]
    tiled = next((row for row in rows if row.get("views_per_photo", 1) > 1), None)
    if tiled is not None:
        width, height = tiled["photo_size"]
        lines.insert(0, f"tiles: each {width} x {height} photo is {tiled['views_per_photo']} views "
                        f"(the whole photo and its tiles); the times below are per photo")
    for row in rows:
        if "error" in row:
            lines.append(f"{row['engine']:8} {row['batch']:>5}  {row['error']}")
            continue
        peak = "?" if row.get("peak_memory_mb") is None else f"{row['peak_memory_mb']:.0f}"
        gpu = f" (GPU {row['peak_gpu_memory_mb']:.0f} MB)" if "peak_gpu_memory_mb" in row else ""
        lines.append(f"{row['engine']:8} {row['batch']:>5} {row['ms_per_photo']:>9.2f} "
                     f"{row['photos_per_second']:>9.1f} {peak:>8}  {row['device']}{gpu}")
    return "\n".join(lines)


def _main() -> None:
    parser = argparse.ArgumentParser(description="One latency measurement (run by dapt_core.deploy.latency.measure).")
    parser.add_argument("engine", choices=ENGINES)
    parser.add_argument("path")
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--device")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--views", type=int, default=1,
                        help="model inputs per photo (a tiled file's whole view and its tiles)")
    args = parser.parse_args()
    try:
        rows = _run_child(args.engine, args.path, args.batches, args.device, args.threads, args.views)
    except DaptError as error:
        print(str(error), file=sys.stderr)
        sys.exit(2)
    print(json.dumps(rows))


if __name__ == "__main__":
    _main()
