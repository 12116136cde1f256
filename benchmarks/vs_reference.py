#!/usr/bin/env python
"""End to end: `dapt tune` against the plain reference DAPT (reference_dapt.py), whole process.

For each class count, generated 224-px JPEGs (per-class colours and stripes) are written once; then
the reference and `python -m dapt_core.cli tune` run one after the other, each in a fresh process with
the same OMP_NUM_THREADS, on the same data with the same settings (DAPT, batch 32, lr 0.002, beta_v 10,
beta_t 0.01, seed 1, random backbone weights from the same seed, the single zero-shot template
"a photo of a {}." on both sides). Printed per class count: whole-process wall time, the training loop
(prototypes + steps) as each side reports it, their ratios (reference / ours: above 1 means ours is
faster), each process's peak resident memory and the load average around the runs. Each time is given
as wall clock and as the process's CPU time (user + system, all threads): on a machine shared with
other work the wall clock follows the load, the CPU time much less.

  classes  backbone                                shots  epochs  test photos
  10       ViT-B-32                                16     2       10
  100      vit-small-text77 (see SMALL_CONFIG)     16     2       100
  1000     vit-small-text77                        1      1       1000

vit-small-text77 is a 64-px, 4-layer ViT image tower with CLIP's 77-token text context (4 layers, width
128): small enough for a 2-core CPU to run the reference's 1,000 x 77-token text batch at every step.
Its text tower is narrower and shallower than ViT-B's (512 wide, 12 layers), and its image tower much
smaller, so the text share of the work, and with it the ratio, is not that of a ViT-B at 100 or 1,000
classes; gpu_dapt_scaling.py measures ViT-B/16 on a GPU.
The zero-shot cache of `dapt tune` lives in a fresh folder per run, so every run pays for it.

What bounds the whole-process ratio on a CPU: both processes import torch and open_clip (about 6 s
here; open_clip pulls in torchvision and, through it, torch._dynamo), and at 10 classes about 85% of
the reference's training loop is the frozen ViT-B image tower's forward and backward pass, which both
sides must compute (dapt_core saves only the last block's unread outputs and nn.MultiheadAttention's
layout copies there; the matrix products run near the two cores' peak). `dapt tune` also does what
the reference does not: it encodes the training photos once more with the tuned prompts (the class
means a prediction compares against to say "unknown") and calibrates on the test photos.

The measured numbers are in the README (Benchmarks), with the CPU each was measured on.

    OMP_NUM_THREADS=2 python benchmarks/vs_reference.py                 # 10, 100 and 1000 classes
    OMP_NUM_THREADS=2 python benchmarks/vs_reference.py --classes 10 --repeat 2
    python benchmarks/vs_reference.py --demo                            # also `dapt tune` on the demo task
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dapt_core.engine.device import describe_cpu  # noqa: E402  (torch-light: the CPU's name for the table)

SMALL_MODEL = "vit-small-text77"
SMALL_CONFIG = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 64, "layers": 4, "width": 128, "head_width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 4},
}
# The reference's settings: the recipe's augmentation (RandomResizedCrop 8-100 %, flip) and a fixed rate,
# so that both sides do the same work (dapt tune's defaults would add the inspection preset and the quick lr choice).
SETTINGS = ["--lr", "0.002", "--beta-v", "10", "--beta-t", "0.01", "--seed", "1"]
OUR_SETTINGS = ["--preset", "recipe"]  # the reference knows only the recipe's augmentation


@dataclass(frozen=True)
class Preset:
    model: str
    shots: int
    epochs: int
    test_per_class: int = 1


PRESETS = {10: Preset("ViT-B-32", 16, 2), 100: Preset(SMALL_MODEL, 16, 2), 1000: Preset(SMALL_MODEL, 1, 1)}


@dataclass
class Run:
    wall: float
    cpu: float
    train: float
    train_cpu: float
    peak_rss_mib: float
    load: tuple[float, float]  # 1-minute load average before and after


def write_task(root: Path, classes: int, shots: int, test_per_class: int, size: int = 224, seed: int = 0) -> Path:
    """train/<class>/ and test/<class>/ JPEGs: each class a colour and a stripe frequency, plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    for label in range(classes):
        colour = rng.uniform(30, 225, 3)
        frequency, angle = 2 + label % 7, np.pi * ((label * 0.618) % 1.0)
        stripes = np.sin(2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle)))
        for part, count in (("train", shots), ("test", test_per_class)):
            folder = root / part / f"class_{label:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = colour + 40 * stripes[..., None] + rng.normal(0, 20, (size, size, 3))
                Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{index}.jpg", quality=90)
    return root


def timed(command: list[str], env: dict) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds, peak resident memory (MiB) and stdout of a child process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=err, text=True)
        # wait4 returns this child's own resource usage; RUSAGE_CHILDREN would mix all children.
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{err.read()[-3000:]}")
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read()


def run_reference(data: Path, preset: Preset, env: dict, config: Path) -> Run:
    load = os.getloadavg()[0]
    command = [sys.executable, str(ROOT / "benchmarks" / "reference_dapt.py"), str(data), "--model", preset.model,
               "--shots", str(preset.shots), "--epochs", str(preset.epochs), *SETTINGS]
    if preset.model == Path(config).stem:  # an architecture of ours, not one open_clip ships
        command += ["--model-config", str(config)]
    wall, cpu, peak, stdout = timed(command, env)
    report = json.loads(stdout.strip().splitlines()[-1])
    return Run(wall, cpu, report["train_seconds"], report["train_cpu_seconds"], peak, (load, os.getloadavg()[0]))


def run_ours(data: Path, preset: Preset, env: dict, work: Path) -> Run:
    load = os.getloadavg()[0]
    metrics = work / "metrics.json"
    command = [sys.executable, "-m", "dapt_core.cli", "tune", str(data), "--backbone", f"{preset.model}:random",
               "--shots", str(preset.shots), "--epochs", str(preset.epochs), "--templates", "photo", "--device", "cpu",
               "--out", str(work / "prompts.safetensors"), "--json", str(metrics), *SETTINGS, *OUR_SETTINGS]
    wall, cpu, peak, _ = timed(command, {**env, "DAPT_CACHE_DIR": tempfile.mkdtemp(prefix="dapt-cache-", dir=work)})
    report = json.loads(metrics.read_text())
    return Run(wall, cpu, report["train_seconds"], report["train_cpu_seconds"], peak, (load, os.getloadavg()[0]))


def run_demo(env: dict, work: Path) -> Run:
    """`dapt tune` on the demo task with its defaults (the command a new user runs first)."""
    data = work / "demo-task"
    subprocess.run([sys.executable, "-m", "dapt_core.cli", "demo-data", str(data)], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    load = os.getloadavg()[0]
    metrics = work / "demo-metrics.json"
    command = [sys.executable, "-m", "dapt_core.cli", "tune", str(data), "--backbone", "demo", "--shots", "16",
               "--out", str(work / "demo.safetensors"), "--json", str(metrics)]
    wall, cpu, peak, _ = timed(command, {**env, "DAPT_CACHE_DIR": tempfile.mkdtemp(prefix="dapt-cache-", dir=work)})
    report = json.loads(metrics.read_text())
    return Run(wall, cpu, report["train_seconds"], report["train_cpu_seconds"], peak, (load, os.getloadavg()[0]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--repeat", type=int, default=1, help="runs per side; the fastest counts")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--demo", action="store_true", help="also time `dapt tune` on the demo task")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--precision", choices=("fp32", "auto"), default="fp32",
                        help="dapt tune's precision: fp32, the reference's arithmetic (default), or auto, "
                             "the product's default (bf16 for wide towers on CPUs with AMX, see engine/device.py)")
    args = parser.parse_args(argv)

    threads = str(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "HF_HUB_OFFLINE": "1",
           "DAPT_PRECISION": args.precision,  # the reference always computes in fp32
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    work = Path(tempfile.mkdtemp(prefix="dapt-vs-reference-"))
    config = work / f"{SMALL_MODEL}.json"
    config.write_text(json.dumps(SMALL_CONFIG))
    env["DAPT_MODEL_CONFIGS"] = str(config)
    print(f"{describe_cpu()}; {os.cpu_count()} CPUs, OMP_NUM_THREADS={threads}, dapt tune precision {args.precision}, "
          f"work folder {work}", flush=True)

    rows = []
    for classes in args.classes:
        preset = PRESETS[classes]
        data = write_task(work / f"task-{classes}", classes, preset.shots, preset.test_per_class)
        reference = ours = None
        for _ in range(args.repeat):
            this_reference = run_reference(data, preset, env, config)
            this_ours = run_ours(data, preset, env, work)
            reference = this_reference if reference is None or this_reference.wall < reference.wall else reference
            ours = this_ours if ours is None or this_ours.wall < ours.wall else ours
        row = {"classes": classes, "model": preset.model, "shots": preset.shots, "epochs": preset.epochs,
               "reference": vars(reference), "ours": vars(ours),
               "whole_ratio": reference.wall / ours.wall, "train_ratio": reference.train / ours.train,
               "whole_cpu_ratio": reference.cpu / ours.cpu, "train_cpu_ratio": reference.train_cpu / ours.train_cpu}
        rows.append(row)
        print(f"{classes:>5} classes ({preset.model}, {preset.shots} shots, {preset.epochs} epochs): "
              f"whole {reference.wall:.1f} s -> {ours.wall:.1f} s = {row['whole_ratio']:.2f}x "
              f"(CPU {reference.cpu:.1f} s -> {ours.cpu:.1f} s = {row['whole_cpu_ratio']:.2f}x), "
              f"training {reference.train:.1f} s -> {ours.train:.1f} s = {row['train_ratio']:.2f}x "
              f"(CPU {reference.train_cpu:.1f} s -> {ours.train_cpu:.1f} s = {row['train_cpu_ratio']:.2f}x), "
              f"peak RSS {reference.peak_rss_mib:.0f} / {ours.peak_rss_mib:.0f} MiB, "
              f"load {reference.load[0]:.1f}-{ours.load[1]:.1f}", flush=True)
    demo = None
    if args.demo:
        demo = run_demo(env, work)
        print(f"demo task: dapt tune --backbone demo --shots 16: whole {demo.wall:.1f} s (CPU {demo.cpu:.1f} s), "
              f"training {demo.train:.1f} s (CPU {demo.train_cpu:.1f} s), peak RSS {demo.peak_rss_mib:.0f} MiB, "
              f"load {demo.load[0]:.1f}-{demo.load[1]:.1f}", flush=True)

    print("\n| classes | backbone | whole process: reference / ours (ratio) | CPU time (ratio) "
          "| training loop: reference / ours (ratio) | CPU time (ratio) | peak RSS reference / ours |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        r, o = row["reference"], row["ours"]
        print(f"| {row['classes']} | {row['model']} | {r['wall']:.1f} / {o['wall']:.1f} s ({row['whole_ratio']:.2f}x) "
              f"| {r['cpu']:.1f} / {o['cpu']:.1f} s ({row['whole_cpu_ratio']:.2f}x) "
              f"| {r['train']:.1f} / {o['train']:.1f} s ({row['train_ratio']:.2f}x) "
              f"| {r['train_cpu']:.1f} / {o['train_cpu']:.1f} s ({row['train_cpu_ratio']:.2f}x) "
              f"| {r['peak_rss_mib']:.0f} / {o['peak_rss_mib']:.0f} MiB |")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "precision": args.precision, "rows": rows,
                                               "demo": vars(demo) if demo else None}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
