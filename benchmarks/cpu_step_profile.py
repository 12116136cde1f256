"""Where a CPU training step's time goes, and what bf16 does to it on this CPU.

One DAPT training step (the method's real model, losses and optimiser, as engine/estimate.py times it) on
a batch of random images, with the frozen towers in each precision ($DAPT_PRECISION, engine/device.py):

  fp32       plain float32
  bf16       torch.autocast(bfloat16) around the towers: matrix products in bf16, the prompts, losses and
             optimiser in fp32

For each: the median step time (after warm-up) and, from torch.profiler, the share of the step in matrix
products, attention, layer norms, GELU, copies and casts, and the rest. Prints a ratio against fp32 measured
in the same process, with the CPU named.

    OMP_NUM_THREADS=2 python benchmarks/cpu_step_profile.py --backbone ViT-B-32:random --classes 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from dapt_core.engine.backbone import load_backbone  # noqa: E402
from dapt_core.engine.device import PRECISION_ENV, describe_cpu  # noqa: E402
from dapt_core.engine.methods import TuningConfig  # noqa: E402
from dapt_core.engine.training import build_model, step_losses  # noqa: E402

CATEGORIES = {
    "matrix products": ("aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear",
                        "aten::_mkldnn", "mkldnn", "aten::convolution", "aten::_convolution", "aten::conv2d"),
    "attention": ("attention", "aten::softmax", "aten::_softmax"),
    "layer norm": ("layer_norm",),
    "GELU": ("gelu",),
    "copies and casts": ("aten::copy_", "aten::to", "aten::_to_copy", "aten::contiguous", "aten::clone",
                         "aten::cat", "aten::clamp"),
}


def category(name: str) -> str:
    for label, needles in CATEGORIES.items():
        if any(needle in name for needle in needles):
            return label
    return "other"


def step_once(model, optimizer, images, labels, prototypes, config):
    terms = step_losses(model, model, images, labels, prototypes, config)
    optimizer.zero_grad(set_to_none=True)
    terms["objective"].backward()
    optimizer.step()


def measure(spec: str, classes: int, batch: int, mode: str, steps: int, profile: bool) -> dict:
    os.environ[PRECISION_ENV] = mode
    backbone = load_backbone(spec, "cpu")
    classnames = [f"class {i}" for i in range(classes)]
    config = TuningConfig(method="dapt", lr=0.002)
    model = build_model(backbone, classnames, config)
    generator = torch.Generator().manual_seed(0)
    size = backbone.preprocessing.size
    images = torch.randn(batch, 3, size, size, generator=generator)
    labels = torch.randint(classes, (batch,), generator=generator)
    prototypes = torch.nn.functional.normalize(torch.randn(classes, backbone.embed_dim, generator=generator), dim=-1)
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=config.lr, momentum=config.momentum)
    step_once(model, optimizer, images, labels, prototypes, config)  # warm-up
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step_once(model, optimizer, images, labels, prototypes, config)
        times.append(time.perf_counter() - started)
    shares = {}
    if profile:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            step_once(model, optimizer, images, labels, prototypes, config)
        totals: dict[str, float] = {}
        for event in prof.key_averages():
            totals[category(event.key)] = totals.get(category(event.key), 0.0) + event.self_cpu_time_total
        whole = sum(totals.values()) or 1.0
        shares = {label: totals.get(label, 0.0) / whole for label in [*CATEGORIES, "other"]}
    return {"mode": mode, "step": statistics.median(times), "shares": shares}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="ViT-B-32:random")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    print(f"CPU: {describe_cpu()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.backbone}, DAPT, {args.classes} classes, batch {args.batch}")
    rows = [measure(args.backbone, args.classes, args.batch, mode, args.steps, not args.no_profile)
            for mode in args.modes]
    reference = next((row["step"] for row in rows if row["mode"] == "fp32"), rows[0]["step"])
    labels = [*CATEGORIES, "other"]
    print("| mode | step s | speed vs fp32 | " + " | ".join(labels) + " |")
    print("|---|---|---|" + "---|" * len(labels))
    for row in rows:
        shares = " | ".join(f"{100 * row['shares'].get(label, 0):.0f}%" for label in labels) if row["shares"] else \
            " | ".join("" for _ in labels)
        print(f"| {row['mode']} | {row['step']:.2f} | {reference / row['step']:.2f}x | {shares} |")


if __name__ == "__main__":
    main()
