#!/usr/bin/env python
"""DAPT training throughput and peak GPU memory against the number of classes (a lent-GPU check).

A random-weight ViT-B/16 CLIP (open_clip "ViT-B-16" with NAME:random weights: nothing to download) runs the
engine's own DAPT step (dapt_core.engine.training._step: text and visual prompts, cross-entropy + intra- and
inter-dispersion, SGD) under the engine's autocast, which is bf16 on a GPU that has it, at batch 32, for 10,
100 and 1000 classes. The text encoder runs over every class at every step (only each class's suffix after
the shared prefix), so time and memory grow with the class count; this measures by how much.

Two numbers per class count:
  - the model step alone, on synthetic image tensors already on the device;
  - the whole training loop of dapt_core.engine.training.tune on generated 224-px JPEGs (decoding, augmentation,
    batching, host-to-device copies and the step), two epochs; the share of its time the device waits
    for data is 1 - (model step time / whole step time). On a CPU the same number is the share of time
    spent outside the model step.

    python benchmarks/gpu_dapt_scaling.py                       # CUDA, ViT-B/16, about a minute
    python benchmarks/gpu_dapt_scaling.py --json scaling.json   # also write the numbers as JSON
    python benchmarks/gpu_dapt_scaling.py --quick               # CPU too: a small ViT and a few steps

Stays within --budget-seconds (default 420, under the 8 minutes a lent GPU allows): the number of timed
steps per class count shrinks to fit what is left.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing

os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUICK_MODEL = "dapt-quick-vit"
QUICK_CONFIG = {  # a small ViT CLIP with the real text context length: seconds per step on a CPU
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small model and few steps; runs on the CPU")
    parser.add_argument("--model", help="open_clip architecture (default ViT-B-16; --quick: a small ViT)")
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, help="timed steps per class count (default 40; --quick 3)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 5; --quick 1)")
    parser.add_argument("--budget-seconds", type=float, default=420.0)
    parser.add_argument("--device", help="default: cuda (required without --quick), else cpu")
    parser.add_argument("--no-data", action="store_true", help="skip the measurement with the data path")
    parser.add_argument("--json", help="also write the results here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    from dapt_core.engine.backbone import load_backbone
    from dapt_core.engine.device import autocast_dtype, describe

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type != "cuda" and not args.quick:
        print("No CUDA device: this check is meant for a GPU. Use --quick to try it on the CPU.", file=sys.stderr)
        return 2
    steps = args.steps or (3 if args.quick else 40)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 5)
    name = args.model or (QUICK_MODEL if args.quick else "ViT-B-16")
    if name == QUICK_MODEL:
        import open_clip
        with tempfile.TemporaryDirectory(prefix="dapt-quick-") as folder:  # open_clip reads the file at once
            config_path = Path(folder) / f"{QUICK_MODEL}.json"
            config_path.write_text(json.dumps(QUICK_CONFIG))
            open_clip.add_model_config(config_path)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    backbone = load_backbone(f"{name}:random", device)
    dtype = autocast_dtype(device)
    precision = str(dtype).replace("torch.", "") if dtype is not None else "float32"
    print(f"{name} (random weights) on {describe(device)}, autocast {precision}, batch {args.batch_size}, "
          f"torch {torch.__version__}", flush=True)
    if device.type == "cuda" and dtype != torch.bfloat16:
        print(f"note: this GPU has no bf16; the engine runs {precision} here.", flush=True)

    results = []
    for index, classes in enumerate(args.classes):
        left = args.budget_seconds - (time.perf_counter() - started)
        share = left / (len(args.classes) - index)
        if left < 5:
            results.append({"classes": classes, "skipped": "time budget spent"})
            continue
        try:
            row = measure(backbone, classes, args.batch_size, steps, warmup, share / (1 if args.no_data else 2))
            if not args.no_data:
                row.update(measure_with_data(backbone, classes, args.batch_size, row["ms_per_step"],
                                             images=(4 if args.quick else 10) * args.batch_size))
            results.append(row)
        except torch.cuda.OutOfMemoryError as error:
            results.append({"classes": classes, "error": f"out of memory: {str(error).splitlines()[0]}"})
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        print_row(results[-1])

    report = {
        "model": name, "weights": "random", "device": describe(device), "precision": precision,
        "batch_size": args.batch_size, "torch": torch.__version__, "python": platform.python_version(),
        "quick": args.quick, "seconds": round(time.perf_counter() - started, 1), "results": results,
    }
    print(f"done in {report['seconds']} s", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    failed = [r for r in results if "error" in r]
    return 1 if failed and len(failed) == len(results) else 0


def measure(backbone, classes: int, batch_size: int, steps: int, warmup: int, budget: float) -> dict:
    """Images per second and peak memory of DAPT training steps with `classes` classes."""
    import torch.nn.functional as F

    from dapt_core.engine.loss_terms import LOSS
    from dapt_core.engine.methods import TuningConfig
    from dapt_core.engine.training import _step, build_model
    from dapt_core.engine.views import Batch

    device = backbone.device
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    setup = time.perf_counter()
    config = TuningConfig(method="dapt", lr=0.002, batch_size=batch_size)
    model = build_model(backbone, [f"class {i}" for i in range(classes)], config)
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(classes)
    prototypes = F.normalize(torch.randn(classes, backbone.embed_dim, generator=generator), dim=-1).to(device)
    size = backbone.preprocessing.size
    images = torch.randn(batch_size, 3, size, size, generator=generator)
    if cuda:
        images = images.pin_memory()
    labels = torch.randint(0, classes, (batch_size,), generator=generator)
    batch = Batch(images, labels, torch.arange(batch_size), [])

    def step():
        return _step(model, model, batch, prototypes, config, optimizer, share=1.0)

    for _ in range(max(1, warmup)):
        terms = step()
    if cuda:
        torch.cuda.synchronize(device)
    probe = time.perf_counter()
    step()
    if cuda:
        torch.cuda.synchronize(device)
    per_step = time.perf_counter() - probe
    left = budget - (time.perf_counter() - setup)
    timed = max(2, min(steps, int(left / max(per_step, 1e-6)) - 1))
    began = time.perf_counter()
    for _ in range(timed):
        terms = step()
    if cuda:
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - began
    row = {
        "classes": classes,
        "steps": timed,
        "ms_per_step": round(1000 * elapsed / timed, 2),
        "images_per_second": round(timed * batch_size / elapsed, 1),
        "loss": round(float(terms[LOSS]), 4),
        "text_tokens": int(model.token_ids.shape[1]),
    }
    if cuda:
        row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
        row["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved(device) / 2**30, 3)
    else:
        # No allocator statistics on the CPU: the process's peak resident memory so far (Linux: KiB).
        row["process_peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    return row


def measure_with_data(backbone, classes: int, batch_size: int, model_ms_per_step: float, images: int) -> dict:
    """The training loop of `tune` on generated JPEGs: ms per step and the share spent waiting for data."""
    with tempfile.TemporaryDirectory(prefix="dapt-scaling-data-") as folder:
        return _measure_on_jpegs(backbone, classes, batch_size, model_ms_per_step, images, Path(folder))


def _measure_on_jpegs(backbone, classes: int, batch_size: int, model_ms_per_step: float, images: int,
                      folder: Path) -> dict:
    import math

    import numpy as np
    from PIL import Image

    from dapt_core.data.records import LabeledImage
    from dapt_core.engine.methods import TuningConfig
    from dapt_core.engine.training import tune

    per_class = max(1, math.ceil(images / classes))
    rng = np.random.default_rng(classes)
    items = []
    for label in range(classes):
        colour = rng.uniform(30, 225, 3)
        for index in range(per_class):
            path = folder / f"{label}_{index}.jpg"
            pixels = colour + rng.normal(0, 30, (224, 224, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
            items.append(LabeledImage(path, label))
    marks = []

    def on_progress(progress) -> None:
        if progress.phase == "train":
            marks.append((progress.step, progress.elapsed))

    config = TuningConfig(method="dapt", lr=0.002, batch_size=batch_size, epochs=2)
    tune(backbone, [f"class {i}" for i in range(classes)], items, config, shots=per_class, on_progress=on_progress)
    # From the end of step 1 (progress reads the device back there, so it waited for it) to the last
    # step (read back too): the steady loop, without the prototypes pass and the first step's set-up.
    (first_step, first_time), (last_step, last_time) = marks[0], marks[-1]
    if last_step == first_step:
        return {"data_images": len(items)}
    whole_ms = 1000 * (last_time - first_time) / (last_step - first_step)
    return {"data_images": len(items), "data_steps": last_step - first_step, "whole_ms_per_step": round(whole_ms, 2),
            "whole_images_per_second": round(batch_size * 1000 / whole_ms, 1),
            "wait_share": round(max(0.0, 1 - model_ms_per_step / whole_ms), 3)}


def print_row(row: dict) -> None:
    if "images_per_second" not in row:
        print(f"{row['classes']:>5} classes: {row.get('error') or row.get('skipped')}", flush=True)
        return
    memory = (f"peak {row['peak_memory_gib']:.2f} GiB allocated, {row['peak_reserved_gib']:.2f} GiB reserved"
              if "peak_memory_gib" in row else f"process peak RSS {row['process_peak_rss_gib']:.2f} GiB")
    print(f"{row['classes']:>5} classes: {row['images_per_second']:>8.1f} images/s, {row['ms_per_step']:>8.1f} ms/step "
          f"over {row['steps']} steps, {memory}", flush=True)
    if "whole_ms_per_step" in row:
        print(f"       with the data path ({row['data_images']} JPEGs, {row['data_steps']} steps): "
              f"{row['whole_images_per_second']:>8.1f} images/s, {row['whole_ms_per_step']:>8.1f} ms/step, "
              f"waiting for data {100 * row['wait_share']:.0f}% of the time", flush=True)


if __name__ == "__main__":
    sys.exit(main())
