#!/usr/bin/env python
"""A deliberately plain DAPT, written in the shape of the authors' code: the yardstick of vs_reference.py.

What makes it "plain" is exactly what the authors' code does and dapt_core does differently:
  - the text encoder runs over every class at every step, each prompt padded to the full 77-token
    context (CoOp's PromptLearner + TextEncoder);
  - a DataLoader opens, decodes and augments every training photo in PIL at every epoch;
  - zero-shot ("before") uses the single template "a photo of a {}.", also over 77 tokens;
  - loss terms are read back with .item() after every step for the running averages.
Everything else follows the recipe (docs/dapt-recipe.md in words): 16 context vectors N(0, 0.02) shared by
all classes, 16 shallow visual prompt tokens after ln_pre, prototypes from one augmented view per training
image through the frozen model, CE + beta_v * intra + beta_t * inter (t = 2), SGD with momentum 0.9 and
weight decay 5e-4, one constant warm-up epoch at 1e-5, then cosine per epoch.

It uses nothing from dapt_core, only open_clip's modules, so it can serve as an independent check. The
initial prompts are drawn in dapt_core's order from a generator seeded with --seed, and random backbone
weights come from torch.manual_seed(0) as dapt_core's NAME:random does: both sides start identical.

    python benchmarks/reference_dapt.py DATA_DIR --model ViT-B-32 --shots 16 --epochs 2

DATA_DIR holds train/<class>/ and test/<class>/ (class names: folder names, "_" read as a space).
Prints one JSON object: train_seconds and train_cpu_seconds (prototypes + training loop, wall and
process CPU time), eval_seconds, accuracies, history.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import open_clip  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402
from torchvision import transforms as T  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
RANDOM_WEIGHTS_SEED = 0  # what dapt_core's NAME:random uses, so both sides hold the same weights
SINGLE_TEMPLATE = "a photo of a {}."


class ImageList(Dataset):
    """(path, label) pairs, decoded and transformed on every access, as Dassl's DatasetWrapper does."""

    def __init__(self, items: list[tuple[Path, int]], transform):
        self.items, self.transform = items, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, label = self.items[index]
        with Image.open(path) as image:
            return self.transform(image.convert("RGB")), label


def read_task(root: Path, shots: int, seed: int) -> tuple[list[str], list[tuple[Path, int]], list[tuple[Path, int]]]:
    """Class names, `shots` random training images per class, and every test image."""
    folders = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    draw = random.Random(seed)
    train, test = [], []
    for label, folder in enumerate(folders):
        files = sorted(p for p in (root / "train" / folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        train += [(p, label) for p in draw.sample(files, min(shots, len(files)))]
        test_dir = root / "test" / folder
        if test_dir.is_dir():
            test += [(p, label) for p in sorted(test_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    return [" ".join(f.replace("_", " ").split()) for f in folders], train, test


class PromptLearner(nn.Module):
    """CoOp's learner: [SOS] ctx_1..ctx_n [name tokens] "." [EOS] [padding up to 77], per class."""

    def __init__(self, clip: nn.Module, tokenizer, classnames: list[str], n_ctx: int, generator: torch.Generator):
        super().__init__()
        width = clip.token_embedding.weight.shape[1]
        self.ctx = nn.Parameter(torch.empty(n_ctx, width).normal_(0.0, 0.02, generator=generator))
        placeholder = " ".join(["X"] * n_ctx)
        tokenized = tokenizer([f"{placeholder} {name}." for name in classnames])
        with torch.no_grad():
            embedding = clip.token_embedding(tokenized)
        self.register_buffer("tokenized_prompts", tokenized)
        self.register_buffer("token_prefix", embedding[:, :1])
        self.register_buffer("token_suffix", embedding[:, 1 + n_ctx:])

    def forward(self) -> torch.Tensor:
        ctx = self.ctx.unsqueeze(0).expand(self.token_prefix.shape[0], -1, -1)
        return torch.cat([self.token_prefix, ctx, self.token_suffix], dim=1)


class TextEncoder(nn.Module):
    """CLIP's text transformer over the learner's embedded prompts; the feature is read at EOS."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        self.transformer, self.ln_final = clip.transformer, clip.ln_final
        self.positional_embedding, self.text_projection = clip.positional_embedding, clip.text_projection
        self.register_buffer("attn_mask", clip.attn_mask, persistent=False)

    def forward(self, prompts: torch.Tensor, tokenized: torch.Tensor) -> torch.Tensor:
        x = prompts + self.positional_embedding
        x = self.transformer(x, attn_mask=self.attn_mask)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), tokenized.argmax(dim=-1)] @ self.text_projection


class PromptedImageEncoder(nn.Module):
    """The ViT image tower with shallow visual prompt tokens between the CLS token and the patches."""

    def __init__(self, visual: nn.Module, n_vis: int, generator: torch.Generator):
        super().__init__()
        self.visual = visual
        width, patch = visual.class_embedding.shape[-1], visual.conv1.kernel_size[0]
        bound = math.sqrt(6.0 / float(3 * patch * patch + width))
        self.prompt = nn.Parameter(torch.empty(1, n_vis, width).uniform_(-bound, bound, generator=generator))

    def forward(self, images: torch.Tensor, prompted: bool = True) -> torch.Tensor:
        v = self.visual
        x = v.conv1(images).flatten(2).transpose(1, 2)
        x = torch.cat([v.class_embedding.expand(x.shape[0], 1, -1), x], dim=1) + v.positional_embedding
        x = v.ln_pre(x)
        if prompted:
            x = torch.cat([x[:, :1], self.prompt.expand(x.shape[0], -1, -1), x[:, 1:]], dim=1)
        x = v.transformer(x)
        return v.ln_post(x[:, 0]) @ v.proj


class ReferenceDAPT(nn.Module):
    """A frozen CLIP with a learned text context and visual prompt; logits as CLIP computes them."""

    def __init__(self, clip: nn.Module, tokenizer, classnames: list[str], seed: int, n_ctx: int = 16, n_vis: int = 16):
        super().__init__()
        for parameter in clip.parameters():
            parameter.requires_grad_(False)
        generator = torch.Generator().manual_seed(seed)  # text context first, then the visual prompt
        self.prompt_learner = PromptLearner(clip, tokenizer, classnames, n_ctx, generator)
        self.text_encoder = TextEncoder(clip)
        self.image_encoder = PromptedImageEncoder(clip.visual, n_vis, generator)
        self.logit_scale = clip.logit_scale

    def text_features(self) -> torch.Tensor:
        prompts = self.prompt_learner()
        return F.normalize(self.text_encoder(prompts, self.prompt_learner.tokenized_prompts), dim=-1)

    def forward(self, images: torch.Tensor):
        image = F.normalize(self.image_encoder(images), dim=-1)
        text = self.text_features()
        return self.logit_scale.exp() * image @ text.t(), image, text


def dapt_losses(model: ReferenceDAPT, images, labels, prototypes, beta_v: float, beta_t: float, t: float = 2.0) -> dict:
    """The recipe's loss terms on one batch, as tensors (total carries the gradient)."""
    logits, image, text = model(images)
    ce = F.cross_entropy(logits, labels)
    intra = F.mse_loss(image, prototypes[labels])
    inter = torch.pdist(text, p=2).pow(2).mul(-t).exp().mean()
    return {"ce": ce, "intra": intra, "inter": inter, "total": ce + beta_v * intra + beta_t * inter,
            "logits": logits}


def train_transform(size: int):
    return T.Compose([T.RandomResizedCrop(size, scale=(0.08, 1.0), interpolation=T.InterpolationMode.BICUBIC),
                      T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(open_clip.OPENAI_DATASET_MEAN,
                                                                          open_clip.OPENAI_DATASET_STD)])


def test_transform(size: int):
    return T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size), T.ToTensor(),
                      T.Normalize(open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)])


@torch.no_grad()
def compute_prototypes(model: ReferenceDAPT, dataset: Dataset, n_classes: int, batch_size: int) -> torch.Tensor:
    sums = torch.zeros(n_classes, model.image_encoder.visual.output_dim)
    counts = torch.zeros(n_classes)
    for images, labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        features = F.normalize(model.image_encoder(images, prompted=False), dim=-1)
        sums.index_add_(0, labels, features)
        counts.index_add_(0, labels, torch.ones(len(labels)))
    return sums / counts.clamp_min(1)[:, None]


def learning_rate(epoch: int, base_lr: float, epochs: int, warmup_lr: float = 1e-5) -> float:
    """Dassl's ConstantWarmupScheduler (1 epoch) around CosineAnnealingLR(T_max=epochs)."""
    return warmup_lr if epoch < 1 else 0.5 * base_lr * (1.0 + math.cos(math.pi * (epoch - 1) / epochs))


@torch.no_grad()
def accuracy(model: ReferenceDAPT, loader: DataLoader, text: torch.Tensor, prompted: bool) -> float:
    correct = total = 0
    for images, labels in loader:
        image = F.normalize(model.image_encoder(images, prompted=prompted), dim=-1)
        correct += int(((image @ text.t()).argmax(dim=1) == labels).sum())
        total += len(labels)
    return correct / max(1, total)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--model", default="ViT-B-32", help="open_clip architecture, random weights")
    parser.add_argument("--model-config", help="a JSON architecture to register first (its stem is the name)")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--beta-v", type=float, default=10.0)
    parser.add_argument("--beta-t", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    if args.model_config:
        open_clip.add_model_config(args.model_config)
    torch.manual_seed(RANDOM_WEIGHTS_SEED)
    clip = open_clip.create_model(args.model, pretrained=None).eval()
    tokenizer = open_clip.get_tokenizer(args.model)
    size = clip.visual.image_size[0] if isinstance(clip.visual.image_size, tuple) else clip.visual.image_size
    classnames, train_items, test_items = read_task(args.data_dir, args.shots, args.seed)
    model = ReferenceDAPT(clip, tokenizer, classnames, args.seed)

    started, cpu_started = time.perf_counter(), time.process_time()
    train_set = ImageList(train_items, train_transform(size))
    prototypes = compute_prototypes(model, train_set, len(classnames), 100)
    parameters = [model.prompt_learner.ctx, model.image_encoder.prompt]
    optimizer = torch.optim.SGD(parameters, lr=args.lr, momentum=0.9, weight_decay=5e-4)
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                        drop_last=len(train_set) >= args.batch_size,
                        generator=torch.Generator().manual_seed(args.seed))
    history = []
    for epoch in range(args.epochs):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(epoch, args.lr, args.epochs)
        sums = {"loss": 0.0, "ce": 0.0, "intra": 0.0, "inter": 0.0}
        steps = 0
        for images, labels in loader:
            terms = dapt_losses(model, images, labels, prototypes, args.beta_v, args.beta_t)
            optimizer.zero_grad()
            terms["total"].backward()
            optimizer.step()
            sums["loss"] += terms["total"].item()
            for key in ("ce", "intra", "inter"):
                sums[key] += terms[key].item()
            steps += 1
            print(f"epoch {epoch + 1}/{args.epochs} step {steps}/{len(loader)} loss {terms['total'].item():.4f}",
                  file=sys.stderr, flush=True)
        history.append({"epoch": epoch + 1, **{k: v / max(1, steps) for k, v in sums.items()}})
    train_seconds, train_cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started

    started = time.perf_counter()
    test_loader = DataLoader(ImageList(test_items, test_transform(size)), batch_size=100)
    with torch.no_grad():
        zero_shot = F.normalize(clip.encode_text(tokenizer([SINGLE_TEMPLATE.format(c) for c in classnames])), dim=-1)
        tuned = model.text_features()
    before = accuracy(model, test_loader, zero_shot, prompted=False)
    after = accuracy(model, test_loader, tuned, prompted=True)
    print(json.dumps({"train_seconds": train_seconds, "train_cpu_seconds": train_cpu_seconds,
                      "eval_seconds": time.perf_counter() - started,
                      "zero_shot_accuracy": before, "accuracy": after, "n_train": len(train_items),
                      "n_test": len(test_items), "history": history}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
