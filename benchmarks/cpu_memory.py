#!/usr/bin/env python
"""What keeping freed memory (dapt_core/engine/cpu_memory.py) saves a tuning run on the CPU.

`dapt tune` runs in a fresh process with `keep_freed_memory` as shipped ("kept") and with it replaced by a
no-op ("returned": glibc's malloc then hands freed buffers back and maps them again at the next step), on
vs_reference.py's 10-class task: 224-px JPEGs, 16 shots, ViT-B-32 with random weights, 2 epochs, batch
32, the recipe's augmentation, fp32 (`DAPT_PRECISION=fp32`; a ViT-B activation of batch 32 is under glibc's
largest mmap threshold, where the setting matters). Printed per setting, the fastest of `--repeat` runs:
the process's minor page faults, system and user CPU seconds, the training loop's seconds (as the
metrics JSON records them) and the whole process's wall seconds. Only glibc's malloc is touched, so
elsewhere (musl, macOS, Windows) both settings run the same.

    OMP_NUM_THREADS=2 python benchmarks/cpu_memory.py
    OMP_NUM_THREADS=2 python benchmarks/cpu_memory.py --repeat 3 --json cpu_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from vs_reference import OUR_SETTINGS, SETTINGS, write_task  # noqa: E402

CLASSES, SHOTS, EPOCHS, TEST_PER_CLASS, MODEL = 10, 16, 2, 1, "ViT-B-32"

# `dapt tune` in this process, with keep_freed_memory left as it is or made a no-op first.
CHILD = """
import contextlib, sys
from dapt_core.engine import cpu_memory
if sys.argv[1] == "returned":
    cpu_memory.keep_freed_memory = lambda enabled=True: contextlib.nullcontext()
from dapt_core.cli import main
sys.exit(main(sys.argv[2:]))
"""
SETTINGS_MEASURED = ("kept", "returned")


def run(setting: str, data: Path, work: Path, env: dict) -> dict:
    metrics = work / f"metrics-{setting}.json"
    command = [sys.executable, "-c", CHILD, setting, "tune", str(data), "--backbone", f"{MODEL}:random",
               "--shots", str(SHOTS), "--epochs", str(EPOCHS), "--templates", "photo", "--device", "cpu",
               "--out", str(work / f"prompts-{setting}.safetensors"), "--json", str(metrics),
               *SETTINGS, *OUR_SETTINGS]
    child_env = {**env, "DAPT_CACHE_DIR": tempfile.mkdtemp(prefix="dapt-cache-", dir=work)}
    with tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=child_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
        # wait4 returns this child's own resource usage; RUSAGE_CHILDREN would mix all children.
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise RuntimeError(f"dapt tune ({setting}) failed:\n{err.read()[-3000:]}")
    report = json.loads(metrics.read_text())
    return {"setting": setting, "minor_page_faults": usage.ru_minflt, "system_seconds": usage.ru_stime,
            "user_seconds": usage.ru_utime, "train_seconds": report["train_seconds"], "wall_seconds": wall,
            "peak_rss_mib": usage.ru_maxrss / 1024}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="runs per setting, alternating; the fastest counts")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    threads = str(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "HF_HUB_OFFLINE": "1",
           "DAPT_PRECISION": "fp32", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    work = Path(tempfile.mkdtemp(prefix="dapt-cpu-memory-"))
    data = write_task(work / "task", CLASSES, SHOTS, TEST_PER_CLASS)
    print(f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={threads}, {CLASSES} classes, {MODEL} (random weights), "
          f"{SHOTS} shots, {EPOCHS} epochs, fp32; work folder {work}", flush=True)
    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        for setting in SETTINGS_MEASURED:
            row = run(setting, data, work, env)
            print(json.dumps(row), flush=True)
            if setting not in best or row["wall_seconds"] < best[setting]["wall_seconds"]:
                best[setting] = row
    print("\n| freed memory | minor page faults | system CPU s | user CPU s | training loop s | whole process s "
          "| peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for setting in SETTINGS_MEASURED:
        row = best[setting]
        print(f"| {setting} | {row['minor_page_faults']:,} | {row['system_seconds']:.1f} | {row['user_seconds']:.1f} "
              f"| {row['train_seconds']:.1f} | {row['wall_seconds']:.1f} | {row['peak_rss_mib']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "rows": [best[s] for s in SETTINGS_MEASURED]},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
