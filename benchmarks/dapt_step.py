"""Training images per second of one DAPT step (forward, both losses, backward, SGD step).

Prints our step's throughput and the ratio against a reference step in the same process that
runs the text encoder over every context position (77 for real CLIPs) for every class, as the
authors' code does; ours encodes [SOS] + context once and each class's suffix up to EOS
(dapt_core.engine.text_encoder); everything else is identical. Images are random tensors: this measures
the model, not decoding.

    python benchmarks/dapt_step.py --backbone demo --batch 32 --classes 10
    python benchmarks/dapt_step.py --backbone ViT-B-16:random --batch 32 --classes 100 --device cuda
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from dapt_core.engine.backbone import load_backbone
from dapt_core.engine.device import autocast, describe
from dapt_core.engine.losses import inter_dispersion, intra_dispersion
from dapt_core.engine.prompts import PromptedCLIP


def measure(model: PromptedCLIP, batch: int, steps: int, warmup: int) -> float:
    """Images per second over `steps` timed steps after `warmup` untimed ones."""
    device = model.backbone.device
    size = model.backbone.preprocessing.size
    n_classes = len(model.classnames)
    images = torch.randn(batch, 3, size, size, device=device)
    labels = torch.arange(batch, device=device) % n_classes
    prototypes = F.normalize(torch.randn(n_classes, model.backbone.embed_dim, device=device), dim=-1)
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)

    def step():
        with autocast(device):
            logits, image, text = model(images)
        loss = (F.cross_entropy(logits.float(), labels) + 10 * intra_dispersion(image, prototypes, labels)
                + 0.01 * inter_dispersion(text))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return batch * steps / (time.perf_counter() - started)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="demo")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    backbone = load_backbone(args.backbone, args.device)
    classnames = [f"defect type {i}" for i in range(args.classes)]
    results = {}
    for name, trim in (("reference (full text context)", False), ("ours", True)):
        model = PromptedCLIP(backbone, classnames, text_prompt=True, visual_prompt=True,
                             generator=torch.Generator().manual_seed(0), trim_text_padding=trim)
        results[name] = measure(model, args.batch, args.steps, args.warmup)
        text = (f"shared {1 + model.n_ctx}-token prefix + {model.token_suffix.shape[1]}-token suffix per class"
                if model.shares_text_prefix else f"{model.token_ids.shape[1]} tokens per class")
        print(f"{name:32s} {results[name]:8.1f} images/s  (text: {text})")
    ratio = results["ours"] / results["reference (full text context)"]
    print(f"backbone {backbone.spec} on {describe(backbone.device)}, batch {args.batch}, "
          f"{args.classes} classes: ours / reference = {ratio:.2f}x")


if __name__ == "__main__":
    main()
