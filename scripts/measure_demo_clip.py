#!/usr/bin/env python
"""What a demo CLIP's frozen features can do on the demo tasks, with no tuning.

For each model folder (open_clip local-dir layout) and each task folder (as `dapt demo-data` writes
it), on the test part:

- zero-shot accuracy with the model's own templates (zero_shot_templates.json), with
  "a photo of a {}." only, and with open_clip's 80 OPENAI_IMAGENET_TEMPLATES; per class with the
  model's templates;
- a nearest-centroid classifier on the frozen image features of the training pictures (the 16
  shots per class; no text, no training): how much the image features separate the classes;
- tolerance of visual prompts: the mean cosine of each test picture's features with 16 freshly
  initialised prompt tokens (as VPT and DAPT start) to its features without, and zero-shot
  accuracy with those tokens.

    python scripts/measure_demo_clip.py --model old=/tmp/old_demo_clip --model new=assets/demo_clip \\
        --task carbon-fibre=/tmp/demo_task --task ceramic=/tmp/ceramic_task --json /tmp/measure.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dapt_core.data.folders import load_split  # noqa: E402
from dapt_core.engine.backbone import LOCAL_DIR_PREFIX, load_backbone  # noqa: E402
from dapt_core.engine.evaluation import encode_images  # noqa: E402
from dapt_core.engine.prompts import PromptedCLIP  # noqa: E402

SINGLE_TEMPLATE = ("a photo of a {}.",)


def class_text_features(backbone, classnames, templates) -> torch.Tensor:
    """Per class the normalised mean of its normalised template embeddings."""
    model, tokenizer = backbone.model, backbone.tokenizer
    with torch.no_grad():
        rows = []
        for name in classnames:
            f = model.encode_text(tokenizer([t.format(name) for t in templates]), normalize=True).mean(0)
            rows.append(f / f.norm())
    return torch.stack(rows)


def accuracy(features: torch.Tensor, labels: torch.Tensor, classifier: torch.Tensor) -> float:
    return float((features @ classifier.T).argmax(1).eq(labels).float().mean())


def measure(model_dir: Path, task_dir: Path) -> dict:
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    backbone = load_backbone(f"{LOCAL_DIR_PREFIX}{model_dir}")
    split = load_split(task_dir, shots=16, seed=1)
    classes = split.classnames
    own = backbone.zero_shot_templates or SINGLE_TEMPLATE
    openai80 = tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)
    prompted = PromptedCLIP(
        backbone,
        classes,
        text_prompt=False,
        visual_prompt=True,
        n_vis=16,
        fixed_text_features=torch.eye(len(classes), backbone.embed_dim),
        generator=torch.Generator().manual_seed(1),
    )
    with torch.no_grad():
        test, labels, *_ = encode_images(prompted, split.test, prompted=False)
        test_prompted, *_ = encode_images(prompted, split.test, prompted=True)
        train, train_labels, *_ = encode_images(prompted, split.train, prompted=False)
    own_text = class_text_features(backbone, classes, own)
    centroids = torch.stack([train[train_labels == c].mean(0) for c in range(len(classes))])
    centroids = centroids / centroids.norm(dim=1, keepdim=True)
    predicted = (test @ own_text.T).argmax(1)
    n = len(labels)
    zero_shot = accuracy(test, labels, own_text)
    return {
        "model": str(model_dir),
        "task": str(task_dir),
        "test_pictures": n,
        "zero_shot": {
            f"own templates ({len(own)})": round(zero_shot, 4),
            "a photo of a {}.": round(
                accuracy(test, labels, class_text_features(backbone, classes, SINGLE_TEMPLATE)), 4
            ),
            "openai 80 templates": round(accuracy(test, labels, class_text_features(backbone, classes, openai80)), 4),
        },
        "zero_shot_se": round(math.sqrt(zero_shot * (1 - zero_shot) / n), 4),
        "zero_shot_per_class": {
            c: round(float(predicted[labels == i].eq(i).float().mean()), 3) for i, c in enumerate(classes)
        },
        "nearest_centroid_of_shots": round(accuracy(test, labels, centroids), 4),
        "random_prompt_cosine": round(float((test * test_prompted).sum(1).mean()), 4),
        "zero_shot_with_random_prompt": round(accuracy(test_prompted, labels, own_text), 4),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--model", action="append", required=True, metavar="NAME=DIR", help="a model folder (local-dir layout)"
    )
    ap.add_argument("--task", action="append", required=True, metavar="NAME=DIR", help="a task folder (dapt demo-data)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = []
    for model in args.model:
        model_name, model_dir = model.split("=", 1)
        for task in args.task:
            task_name, task_dir = task.split("=", 1)
            r = measure(Path(model_dir), Path(task_dir))
            results.append({"model_name": model_name, "task_name": task_name, **r})
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
