#!/usr/bin/env python
"""Pretrain DAPT Studio's offline demo CLIP from scratch on a procedural inspection corpus.

Reproducible: a fixed number of steps, a seeded corpus (each group of pictures has its own seed, so the
corpus does not depend on the number of worker processes), seeded initialisation and batch order,
``torch.set_num_threads(2)``.

    python scripts/pretrain_demo_clip.py --recipe           # the shipped model, stages 1-3, into assets/demo_clip/
    python scripts/pretrain_demo_clip.py --quick --out /tmp/q  # smoke run, a few minutes

The shipped model is made in three stages (RECIPE; one stage is one run of this script with that
stage's options): stage 1 from scratch at 64 px; stage 2 continues from it with half of the steps
also feeding the image tower 1-16 random visual-prompt-like tokens (see random_prompt_tokens);
stage 3 moves it to 128-px input with 16-px patches (widen_patch_embedding) on a corpus rendered at
128 px with smaller and fainter defects, keeping the prompt tokens. ``--recipe`` starts after the
last stage whose folder under --work-dir holds a finished model, and stage 3 keeps resume points,
so an interrupted run continues where it stopped. The model card (assets/demo_clip/MODEL_CARD.md)
has the measured times.

What it does
  1. Renders a corpus of groups (dapt_core.demo.procedural): a group is one material in one colour, rendered
     once with every defect state (each picture with its own texture and lighting), so the captions
     inside a group differ only in the defect. A share of groups shows generic shapes and machine
     parts instead (one colour per group, so that those captions differ only in the shape).
  2. Trains an open_clip CLIP (architecture from arch_config, registered with open_clip.add_model_config) with
     open_clip's ClipLoss on batches made of whole groups (hard negatives). Captions are composed per
     step from templates with synonyms. For the first 40% of the steps every caption names colour,
     material and defect; after that some groups get captions with material only or generic ones
     ("a photo of a scratch.", at most one group per batch). Mixed in from the start, these
     ambiguous captions stalled learning (loss 4.2 vs 3.0 after 150 steps in a pilot).
  3. AdamW, cosine learning rate by step with linear warm-up, bf16 autocast on the CPU.
  4. Measures zero-shot accuracy on a held-out material and on the training materials and writes the
     model in open_clip's local-dir layout (fp16 safetensors) plus pretrain_summary.json.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dapt_core.demo import procedural as P  # noqa: E402

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

DEMO_ONLY_MATERIALS = ("carbon fibre",)  # never in the corpus: kept for the demo task
DEFAULT_HELDOUT = "ceramic"  # in the corpus vocabulary but never trained on: measures transfer

ZERO_SHOT_TEMPLATES = ("a photo of a {}.", "a close-up photo of a {}.", "a {} on a surface.", "an inspection photo showing a {}.")

# ------------------------------------------------------------------------------------------------
# Captions
# ------------------------------------------------------------------------------------------------

MATERIAL_WORDS = {
    "metal": (["metal", "steel", "aluminium", "metallic"], ["plate", "sheet", "panel", "part", "surface"]),
    "wood": (["wooden", "wood", "oak", "pine"], ["board", "plank", "panel", "surface"]),
    "fabric": (["cotton", "woven", "linen", "fabric"], ["fabric", "cloth", "textile"]),
    "plastic": (["plastic", "moulded plastic", "polymer"], ["part", "casing", "panel", "cover", "surface"]),
    "concrete": (["concrete", "cement"], ["slab", "wall", "floor", "block", "surface"]),
    "glass": (["glass"], ["pane", "panel", "sheet", "window", "surface"]),
    "paper": (["paper", "cardboard"], ["sheet", "label", "box", "surface"]),
    "leather": (["leather"], ["surface", "hide", "panel", "strap", "seat"]),
    "rubber": (["rubber"], ["mat", "seal", "sheet", "gasket", "surface"]),
    "ceramic": (["ceramic", "porcelain", "glazed"], ["tile", "plate", "surface"]),
    "carbon fibre": (["carbon fibre", "carbon fiber", "composite"], ["panel", "sheet", "part", "surface"]),
    "patterned": (["patterned", "textured", "embossed"], ["surface", "panel", "sheet", "part"]),
}
COLOUR_WORDS = {c: [c] for c in P.COLOURS}
COLOUR_WORDS["grey"] = ["grey", "gray"]
COLOUR_WORDS["purple"] = ["purple", "violet"]

# first noun is the class name users will type; it is drawn 60% of the time
DEFECT_WORDS = {
    "none": (["no defect", "no defects", "no damage"], ["flawless", "clean", "intact", "undamaged", "defect-free"]),
    "scratch": (["scratch", "scratch mark", "scrape"], ["scratched", "scraped"]),
    "crack": (["crack", "fracture", "hairline crack"], ["cracked", "fractured"]),
    "dent": (["dent", "dent mark", "dint"], ["dented"]),
    "stain": (["stain", "stain mark", "smudge", "discoloration"], ["stained", "smudged", "discoloured"]),
    "hole": (["hole", "puncture", "perforation"], ["holed", "punctured", "perforated"]),
    "rust": (["rust", "rust spot", "corrosion"], ["rusty", "rusted", "corroded"]),
    "burn": (["burn", "burn mark", "scorch mark"], ["burnt", "burned", "scorched"]),
    "missing piece": (["missing piece", "broken corner", "chipped edge"], ["broken", "chipped", "incomplete"]),
}

# Captions that name only the defect: the same whether or not there is one.
GENERIC_CAPTIONS = [
    "a photo of a {N}.",
    "a close-up photo of a {N}.",
    "a {N} on a surface.",
    "an inspection photo showing a {N}.",
    "{N}.",
    "a photo of a {A} surface.",
    "a {A} part.",
]
T_DEFECT = {
    "full": [
        "a photo of a {A} {C} {M} {O}.",
        "a photo of a {C} {M} {O} with a {N}.",
        "close-up of a {A} {C} {M} {O}.",
        "a close-up photo of a {N} on a {C} {M} {O}.",
        "a {N} on a {C} {M} {O}.",
        "an inspection photo of a {C} {M} {O} showing a {N}.",
        "{C} {M} {O}, defect: {N}.",
        "a photo of a {N} on {C} {M}.",
    ],
    "material": [
        "a photo of a {A} {M} {O}.",
        "a photo of a {M} {O} with a {N}.",
        "close-up of a {A} {M} {O}.",
        "a close-up photo of a {N} on a {M} {O}.",
        "a {N} on a {M} {O}.",
        "{M} {O}, defect: {N}.",
    ],
    "generic": GENERIC_CAPTIONS,
}
T_NONE = {
    "full": [
        "a photo of a {A} {C} {M} {O}.",
        "a {C} {M} {O} with {N}.",
        "close-up of a {A} {C} {M} {O}.",
        "an inspection photo of a {C} {M} {O} showing {N}.",
        "{C} {M} {O}, {N}.",
        "a photo of a {C} {M} {O}, {N}.",
    ],
    "material": [
        "a photo of a {A} {M} {O}.",
        "a {M} {O} with {N}.",
        "close-up of a {A} {M} {O}.",
        "{M} {O}, {N}.",
    ],
    "generic": GENERIC_CAPTIONS,
}
T_SHAPE = [
    "a photo of a {C} {S}.",
    "a {C} {S} on a {B} background.",
    "a drawing of a {C} {S}.",
    "a {C} {S}.",
    "a photo of a {S} on a {B} background.",
]

_AN = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")


def _an(s: str) -> str:
    return _AN.sub(lambda m: m.group(1) + "n ", s)


def _pick(rng: np.random.Generator, words: list[str], first_p: float = 0.0) -> str:
    if first_p and rng.random() < first_p:
        return words[0]
    return words[int(rng.integers(len(words)))]


def defect_caption(rng, material: str, colour: str, defect: str, level: str) -> str:
    mats, objs = MATERIAL_WORDS[material]
    nouns, adjs = DEFECT_WORDS[defect]
    tpl = T_NONE[level] if defect == "none" else T_DEFECT[level]
    t = tpl[int(rng.integers(len(tpl)))]
    s = t.format(
        A=_pick(rng, adjs),
        C=_pick(rng, COLOUR_WORDS[colour]),
        M=_pick(rng, mats),
        O=_pick(rng, objs),
        N=_pick(rng, nouns, 0.6),
    )
    return _an(s)


def shape_caption(rng, shape: str, colour: str, bg: str) -> str:
    t = T_SHAPE[int(rng.integers(len(T_SHAPE)))]
    return _an(t.format(C=_pick(rng, COLOUR_WORDS[colour]), S=shape, B=_pick(rng, COLOUR_WORDS[bg])))


# ------------------------------------------------------------------------------------------------
# Corpus
# ------------------------------------------------------------------------------------------------

GROUP = len(P.DEFECTS)  # pictures per group: every defect state once
CORPUS_SEVERITY = (0.5, 1.0)  # defect contrast range (procedural.add_defect)
CORPUS_SCALE = (0.6, 1.4)  # defect size range
COLOUR_NAMES = list(P.COLOURS)


def group_spec(seed: int, gi: int, materials: list[str], shape_frac: float, pattern_frac: float = 0.0) -> dict:
    """What group ``gi`` shows; a pure function of (seed, gi). ``pattern_frac`` of the surface groups
    show a random man-made pattern (procedural.EXTRA_SURFACES) instead of a material."""
    rng = np.random.default_rng([seed, 7, gi])
    if rng.random() < shape_frac:
        bg = COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))]
        kinds = list(rng.choice(P.SHAPES, size=GROUP, replace=False))
        cols = [c for c in COLOUR_NAMES if c != bg]
        # one colour for the whole group, so that its captions differ only in the shape (with a colour
        # per picture the model matched captions by colour and never learned shapes)
        fg = [cols[int(rng.integers(len(cols)))]] * GROUP
        return {"kind": "shape", "bg": bg, "shapes": kinds, "colours": fg}
    # drawn only when asked for, so that corpora made without patterns stay as they were
    if pattern_frac > 0 and rng.random() < pattern_frac:
        return {"kind": "surface", "material": "patterned", "colour": COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))]}
    return {
        "kind": "surface",
        "material": materials[int(rng.integers(len(materials)))],
        "colour": COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))],
    }


def render_group_images(seed: int, gi: int, spec: dict, size: int, severity=CORPUS_SEVERITY, scale=CORPUS_SCALE) -> np.ndarray:
    rng = np.random.default_rng([seed, 11, gi])
    if spec["kind"] == "shape":
        imgs = [P.render_shape(rng, k, c, spec["bg"], size) for k, c in zip(spec["shapes"], spec["colours"])]
    else:
        # same material and colour, but each picture its own texture and lighting: captions differ only
        # in the defect, and the model has to find the defect rather than a pixel difference between
        # otherwise identical pictures (a 400-step pilot: 0.29 vs 0.20 zero-shot on 9 classes)
        imgs = [
            P.render_inspection(rng, spec["material"], spec["colour"], d, size=size, severity=severity, scale=scale)
            for d in P.DEFECTS
        ]
    return np.stack([P.to_uint8(i) for i in imgs])


def _render_chunk(args):
    seed, start, specs, size, severity, scale = args
    return start, np.stack([render_group_images(seed, start + i, s, size, severity, scale) for i, s in enumerate(specs)])


def build_corpus(seed: int, n_groups: int, materials: list[str], shape_frac: float, size: int, workers: int,
                 severity=CORPUS_SEVERITY, scale=CORPUS_SCALE, pattern_frac: float = 0.0):
    specs = [group_spec(seed, gi, materials, shape_frac, pattern_frac) for gi in range(n_groups)]
    images = np.empty((n_groups, GROUP, size, size, 3), np.uint8)
    chunk = 100
    jobs = [(seed, s, specs[s : s + chunk], size, severity, scale) for s in range(0, n_groups, chunk)]
    from tqdm import tqdm

    bar = tqdm(total=n_groups, desc="corpus", unit="group", mininterval=2.0)
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            for start, arr in pool.imap_unordered(_render_chunk, jobs):
                images[start : start + len(arr)] = arr
                bar.update(len(arr))
    else:
        for job in jobs:
            start, arr = _render_chunk(job)
            images[start : start + len(arr)] = arr
            bar.update(len(arr))
    bar.close()
    return specs, images


# caption levels once mixing starts (see --mix-from): the rest are "generic"
P_FULL, P_MATERIAL = 0.75, 0.15


class BatchSampler:
    """Deterministic batches of whole groups with distinct (material, colour) and caption keys."""

    def __init__(self, specs: list[dict], groups_per_batch: int, seed: int):
        self.specs = specs
        self.k = groups_per_batch
        self.rng = np.random.default_rng([seed, 13])
        self.order: list[int] = []
        self.deferred: list[int] = []

    def _next_index(self) -> int:
        if not self.order:
            self.order = list(self.rng.permutation(len(self.specs)))
        return int(self.order.pop())

    def next_batch(self, rng: np.random.Generator, mixed_levels: bool = True) -> tuple[list[int], list[str]]:
        """Next batch: group indices and one caption per picture.

        With ``mixed_levels`` some groups get captions without colour ("material") or without colour
        and material ("generic", at most one group per batch); a material-level group's material is
        unique in its batch. Otherwise every caption names colour, material and defect.
        """
        chosen, keys_surface, caption_keys, captions = [], set(), set(), []
        pending = self.deferred
        self.deferred = []
        tries = 0
        while len(chosen) < self.k:
            gi = pending.pop(0) if pending else self._next_index()
            spec = self.specs[gi]
            sk = (spec["bg"], "shape") if spec["kind"] == "shape" else (spec["material"], spec["colour"])
            if sk in keys_surface and tries < 10 * self.k:
                self.deferred.append(gi)
                tries += 1
                continue
            keys_surface.add(sk)
            chosen.append(gi)
        for gi in chosen:
            spec = self.specs[gi]
            if spec["kind"] == "shape":
                captions.extend(shape_caption(rng, s, c, spec["bg"]) for s, c in zip(spec["shapes"], spec["colours"]))
                continue
            r = rng.random()
            level = "full"
            if mixed_levels and r >= P_FULL:
                level = "material" if r < P_FULL + P_MATERIAL else "generic"
            same_material = sum(1 for g in chosen if self.specs[g].get("material") == spec["material"]) > 1
            if (level == "generic" and ("generic",) in caption_keys) or (level == "material" and same_material):
                level = "full"
            caption_keys.add(("generic",) if level == "generic" else (level, spec["material"], spec["colour"]))
            captions.extend(defect_caption(rng, spec["material"], spec["colour"], d, level) for d in P.DEFECTS)
        return chosen, captions


# ------------------------------------------------------------------------------------------------
# Model, evaluation, saving
# ------------------------------------------------------------------------------------------------


def arch_config(image_size: int, patch_size: int) -> dict:
    """The architecture at an input resolution: the same transformer, with (image_size / patch_size)^2 patches."""
    if image_size % patch_size:
        raise SystemExit(f"--image-size {image_size} is not a multiple of --patch-size {patch_size}")
    return {
        "embed_dim": 192,
        "vision_cfg": {"image_size": image_size, "layers": 4, "width": 192, "head_width": 64, "patch_size": patch_size},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 192, "heads": 3, "layers": 3},
    }


def arch_name(arch: dict) -> str:
    v = arch["vision_cfg"]
    return f"dapt-demo-vit-p{v['patch_size']}-{v['image_size']}"


def preprocess_config(arch: dict) -> dict:
    return {"size": arch["vision_cfg"]["image_size"], "mean": list(CLIP_MEAN), "std": list(CLIP_STD),
            "interpolation": "bicubic", "resize_mode": "shortest"}


def register_arch(arch: dict, out_dir: Path) -> Path:
    import open_clip

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{arch_name(arch)}.json"
    path.write_text(json.dumps(arch, indent=2) + "\n")
    open_clip.add_model_config(path)
    return path


def to_model_input(batch_u8, mean, std):
    import torch

    x = torch.from_numpy(batch_u8).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - mean) / std


def text_classifier(model, tokenizer, classnames, templates=ZERO_SHOT_TEMPLATES):
    """Zero-shot weights: per class the normalised mean of its normalised template embeddings."""
    import torch

    with torch.no_grad():
        w = []
        for c in classnames:
            t = tokenizer([tpl.format(c) for tpl in templates])
            f = model.encode_text(t, normalize=True).mean(0)
            w.append(f / f.norm())
        return torch.stack(w)


def zero_shot_accuracy(model, tokenizer, images_u8: np.ndarray, labels: np.ndarray, classnames, mean, std) -> float:
    import torch

    w = text_classifier(model, tokenizer, classnames)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images_u8), 256):
            f = model.encode_image(to_model_input(images_u8[i : i + 256], mean, std), normalize=True)
            correct += int((f @ w.T).argmax(1).eq(torch.from_numpy(labels[i : i + 256])).sum())
    return correct / len(images_u8)


def eval_set(seed: int, materials: list[str], defects: list[str], per_class: int, size: int = 64):
    """Independent pictures (each its own surface) of ``defects`` on ``materials``."""
    imgs, labels = [], []
    for ci, d in enumerate(defects):
        for j in range(per_class):
            rng = np.random.default_rng([seed, 17, ci, j])
            m = materials[int(rng.integers(len(materials)))]
            c = COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))]
            imgs.append(P.to_uint8(P.render_inspection(rng, m, c, d, size=size, severity=(0.5, 1.0), scale=(0.7, 1.3))))
            labels.append(ci)
    return np.stack(imgs), np.asarray(labels)


def class_name(defect: str) -> str:
    return "no defect" if defect == "none" else defect


def evaluate(model, tokenizer, mean, std, heldout: str, train_materials: list[str], per_class: int, size: int) -> dict:
    model.eval()
    out = {}
    five = ["none", "scratch", "crack", "dent", "stain"]
    for name, mats, defects in [
        (f"heldout_{heldout}_5cls", [heldout], five),
        (f"heldout_{heldout}_9cls", [heldout], list(P.DEFECTS)),
        ("train_materials_9cls", train_materials, list(P.DEFECTS)),
    ]:
        x, y = eval_set(12345, mats, defects, per_class, size)
        acc = zero_shot_accuracy(model, tokenizer, x, y, [class_name(d) for d in defects], mean, std)
        out[name] = {"acc": round(acc, 4), "n": int(len(y)), "chance": round(1 / len(defects), 4),
                     "se": round(math.sqrt(acc * (1 - acc) / len(y)), 4)}
    # generic shapes
    rng = np.random.default_rng([12345, 19])
    xs, ys = [], []
    for si, s in enumerate(P.SHAPES):
        for j in range(per_class // 2):
            xs.append(P.to_uint8(P.render_shape(rng, s, COLOUR_NAMES[j % 9], "white" if j % 2 else "grey", size)))
            ys.append(si)
    acc = zero_shot_accuracy(model, tokenizer, np.stack(xs), np.asarray(ys), list(P.SHAPES), mean, std)
    out["shapes_12cls"] = {"acc": round(acc, 4), "n": len(ys), "chance": round(1 / len(P.SHAPES), 4)}
    model.train()
    return out


def save_local_dir(model, arch: dict, out_dir: Path) -> None:
    """open_clip local-dir layout (open_clip_config.json + fp16 open_clip_model.safetensors), plus the
    architecture JSON and the zero-shot templates."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{arch_name(arch)}.json").write_text(json.dumps(arch, indent=2) + "\n")
    (out_dir / "open_clip_config.json").write_text(json.dumps({"model_cfg": arch, "preprocess_cfg": preprocess_config(arch)}, indent=2) + "\n")
    # the prompts its captions taught it; dapt_core.engine.backbone reads them for zero-shot
    (out_dir / "zero_shot_templates.json").write_text(json.dumps(list(ZERO_SHOT_TEMPLATES), indent=1) + "\n")
    sd = {k: v.detach().to("cpu").half().contiguous() for k, v in model.state_dict().items()}
    tmp = out_dir / "open_clip_model.safetensors.tmp"
    save_file(sd, str(tmp), metadata={"format": "pt", "arch": arch_name(arch)})
    os.chmod(tmp, 0o644)
    os.replace(tmp, out_dir / "open_clip_model.safetensors")


def widen_patch_embedding(state: dict, patch_size: int) -> dict:
    """Weights for a model whose patches are ``patch_size`` pixels, from one with smaller patches.

    Each weight of the old k x k patch kernel is spread over an f x f block (f = patch_size / k) and
    divided by f^2: the new convolution on a picture f times larger computes exactly the old one on
    that picture average-pooled by f. With the same number of patches the positional embeddings,
    transformer and text tower carry over unchanged, so the larger-input model starts out as the
    old model looking at a downsampled picture.
    """
    w = state["visual.conv1.weight"]
    old = w.shape[-1]
    if patch_size == old:
        return state
    if patch_size % old:
        raise SystemExit(f"--patch-size {patch_size} is not a multiple of the initial model's patch size {old}")
    f = patch_size // old
    return {**state, "visual.conv1.weight": w.repeat_interleave(f, 2).repeat_interleave(f, 3) / (f * f)}


def lr_at(step: int, total: int, warmup: int, base: float, min_ratio: float = 0.0) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def augment(x, rng: np.random.Generator, crop_p: float):
    """Per-picture random flips, 90-degree turns and (sometimes) a zoom crop; x is (B, 3, S, S)."""
    import torch
    import torch.nn.functional as F

    B, _, S, _ = x.shape
    out = torch.empty_like(x)
    flips = rng.integers(0, 2, B)
    rots = rng.integers(0, 4, B)
    crop = rng.random(B) < crop_p
    for i in range(B):
        xi = x[i]
        if crop[i]:
            side = int(round(S * math.sqrt(rng.uniform(0.6, 1.0))))
            oy, ox = rng.integers(0, S - side + 1, 2)
            xi = F.interpolate(xi[None, :, oy : oy + side, ox : ox + side], size=(S, S), mode="bilinear", align_corners=False, antialias=True)[0]
        if flips[i]:
            xi = xi.flip(-1)
        if rots[i]:
            xi = torch.rot90(xi, int(rots[i]), (1, 2))
        out[i] = xi
    return out


def random_prompt_tokens(rng: np.random.Generator, p: float, most: int, vision_cfg: dict):
    """With probability `p`, 1..`most` random tokens shaped like a fresh visual prompt, else None.

    Visual prompt tuning inserts learned tokens (without positional embedding) after ln_pre. Large
    CLIPs tolerate such tokens; this 4-layer model with 64 patches did not: one random prompt token
    dropped its zero-shot accuracy on the demo task from 0.438 to 0.36, sixteen to 0.28-0.30, so VPT and
    DAPT started far below zero-shot. Feeding random ones during training teaches it to cope.
    Drawn as dapt_core.engine.prompts initialises them (uniform in +-visual_prompt_bound), times a
    log-uniform factor of 1 to 10 because learned prompts grow during tuning.
    """
    import torch

    if p <= 0 or rng.random() >= p:
        return None
    count = int(rng.integers(1, most + 1))
    from dapt_core.engine.prompts import visual_prompt_bound

    width = vision_cfg["width"]
    bound = visual_prompt_bound(vision_cfg["patch_size"], width) * 10 ** rng.uniform(0.0, 1.0)
    return torch.from_numpy(rng.uniform(-bound, bound, (1, count, width)).astype(np.float32))


# ------------------------------------------------------------------------------------------------
# Resumable training state
# ------------------------------------------------------------------------------------------------

RESUME_DIR = "resume"


def save_resume_point(ckpt_dir: Path, model, opt, sampler: BatchSampler, loop: dict, settings: dict) -> None:
    """Everything the loop needs to continue bit for bit: fp32 weights, AdamW moments, the sampler's
    order and generator, the loop's counters. Tensors as safetensors, the rest as JSON."""
    from safetensors.torch import save_file

    tmp = ckpt_dir / (RESUME_DIR + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    opt_state = opt.state_dict()
    tensors = {f"{i}.{k}": v.contiguous() for i, s in opt_state["state"].items() for k, v in s.items()}
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    meta = {"settings": settings, "loop": loop, "param_groups": opt_state["param_groups"],
            "sampler": {"order": [int(i) for i in sampler.order], "deferred": [int(i) for i in sampler.deferred],
                        "rng": sampler.rng.bit_generator.state}}
    (tmp / "state.json").write_text(json.dumps(meta))
    final = ckpt_dir / RESUME_DIR
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def load_resume_point(ckpt_dir: Path, model, opt, sampler: BatchSampler, settings: dict) -> dict | None:
    """The loop counters of a resume point written by a run with the same settings, after loading its
    weights, optimiser and sampler state; None when there is none to resume from."""
    from safetensors.torch import load_file

    folder = ckpt_dir / RESUME_DIR
    if not (folder / "state.json").is_file():
        return None
    meta = json.loads((folder / "state.json").read_text())
    if meta["settings"] != settings:
        print(f"not resuming from {folder}: it was written with other settings", flush=True)
        return None
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    tensors = load_file(str(folder / "optimizer.safetensors"))
    state: dict = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    sampler.order = list(meta["sampler"]["order"])
    sampler.deferred = list(meta["sampler"]["deferred"])
    sampler.rng.bit_generator.state = meta["sampler"]["rng"]
    return meta["loop"]


# ------------------------------------------------------------------------------------------------
# One training stage, step by step
# ------------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", action="store_true",
                    help="make the shipped model from scratch: stages 1, 2 and 3 in sequence (RECIPE), into --out; "
                         "a finished stage under --work-dir is reused, an interrupted one resumes")
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/demo_clip_recipe"),
                    help="with --recipe: where the stages keep their models and resume points (the last stage's model is copied to --out)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--out", type=Path, default=None, help="output folder (default assets/demo_clip; /tmp/demo_clip_quick with --quick)")
    ap.add_argument("--image-size", type=int, default=64, help="input resolution in pixels (the corpus is rendered at it)")
    ap.add_argument("--patch-size", type=int, default=8, help="ViT patch size; with --init-from it may be a multiple of the initial one")
    ap.add_argument("--groups", type=int, default=12000, help="groups of %d pictures in the pre-rendered corpus" % GROUP)
    ap.add_argument("--groups-per-batch", type=int, default=14, help="batch = this x %d pictures" % GROUP)
    ap.add_argument("--severity", type=float, nargs=2, default=CORPUS_SEVERITY, metavar=("LOW", "HIGH"), help="defect contrast range of the corpus")
    ap.add_argument("--scale", type=float, nargs=2, default=CORPUS_SCALE, metavar=("LOW", "HIGH"), help="defect size range of the corpus")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--shape-frac", type=float, default=0.1)
    ap.add_argument("--pattern-frac", type=float, default=0.0,
                    help="share of surface groups showing a random man-made pattern (gratings, lattices, dots, grain) "
                         "instead of a material: many strong textures marked 'no defect'")
    ap.add_argument("--mix-from", type=float, default=0.4,
                    help="fraction of the steps after which captions without colour/material are mixed in "
                         "(earlier, their ambiguity in a hard-negative batch stalls learning)")
    ap.add_argument("--crop-p", type=float, default=0.25, help="share of pictures given a random zoom crop")
    ap.add_argument("--heldout", default=DEFAULT_HELDOUT)
    ap.add_argument("--workers", type=int, default=2, help="processes that render the corpus")
    ap.add_argument("--eval-per-class", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=500, help="steps between zero-shot evaluations (0: only at the end)")
    ap.add_argument("--save-every", type=int, default=0, help="also save a checkpoint every N steps under --ckpt-dir")
    ap.add_argument("--resume-every", type=int, default=0,
                    help="every N steps keep a resume point under --ckpt-dir; a rerun with the same settings continues from it")
    ap.add_argument("--ckpt-dir", type=Path, default=Path("/tmp/demo_clip_ckpt"))
    ap.add_argument("--no-amp", action="store_true", help="train in fp32 instead of bf16 autocast")
    ap.add_argument("--quick", action="store_true", help="smoke run: 30 steps on a small corpus")
    ap.add_argument("--init-from", type=Path, default=None,
                    help="continue from the weights in this local-dir folder (its pretrain_summary.json is kept as 'previous')")
    ap.add_argument("--prompt-tokens-p", type=float, default=0.0,
                    help="share of steps whose pictures also read 1..--prompt-tokens-max random visual-prompt-like tokens")
    ap.add_argument("--prompt-tokens-max", type=int, default=16)
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.groups, args.warmup, args.eval_per_class, args.eval_every = 30, 300, 5, 20, 0
    if args.out is None:
        args.out = Path("/tmp/demo_clip_quick") if args.quick else REPO / "assets" / "demo_clip"
    if args.heldout not in P.MATERIALS or args.heldout in DEMO_ONLY_MATERIALS:
        ap.error(f"--heldout must be one of {[m for m in P.MATERIALS if m not in DEMO_ONLY_MATERIALS]}")
    return args


def build_model(args, arch: dict):
    """The CLIP to train (seeded initialisation, or the weights of --init-from) and the summary it came with."""
    import open_clip
    import torch

    register_arch(arch, args.out)
    torch.manual_seed(args.seed)
    model = open_clip.create_model(arch_name(arch), pretrained=None)
    if args.init_from is None:
        return model, None
    from safetensors.torch import load_file

    state = {k: v.float() for k, v in load_file(str(args.init_from / "open_clip_model.safetensors")).items()}
    model.load_state_dict(widen_patch_embedding(state, arch["vision_cfg"]["patch_size"]))
    summary_path = args.init_from / "pretrain_summary.json"
    return model, json.loads(summary_path.read_text()) if summary_path.is_file() else None


def check_caption_length(tokenizer, arch: dict) -> int:
    """The longest of a sample of full captions, in tokens; stops the run if captions would be cut."""
    crng = np.random.default_rng([0, 29])
    probe = [defect_caption(crng, m, c, d, "full") for m in MATERIAL_WORDS for c in COLOUR_NAMES for d in P.DEFECTS for _ in range(3)]
    longest = int((tokenizer(probe) > 0).sum(1).max())
    if longest >= arch["text_cfg"]["context_length"]:
        raise SystemExit(f"a caption has {longest} tokens, more than the context length")
    return longest


def make_optimizer(model, args):
    """AdamW without weight decay on gains, biases, embeddings of position/class and the logit scale."""
    import torch

    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n or "positional_embedding" in n or "class_embedding" in n else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.98), eps=1e-6,
    )


def train_step(step: int, args, model, tokenizer, opt, loss_fn, sampler, images, mean, std, vision_cfg) -> float:
    """One optimiser step on the batch of ``step``; every random draw is seeded by (seed, step)."""
    import torch
    import torch.nn.functional as F

    from dapt_core.engine.prompts import encode_image_with_prompts

    size = vision_cfg["image_size"]
    rng = np.random.default_rng([args.seed, 23, step])
    groups, captions = sampler.next_batch(rng, mixed_levels=step >= int(args.mix_from * args.steps))
    x = to_model_input(images[groups].reshape(-1, size, size, 3), mean, std)
    x = augment(x, rng, crop_p=args.crop_p)
    tok = tokenizer(captions)
    lr = lr_at(step, args.steps, args.warmup, args.lr)
    for g in opt.param_groups:
        g["lr"] = lr
    prompts = random_prompt_tokens(rng, args.prompt_tokens_p, args.prompt_tokens_max, vision_cfg)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.no_amp):
        if prompts is None:
            img_f, txt_f, scale = model(x, tok)
        else:
            img_f = F.normalize(encode_image_with_prompts(model.visual, x, prompts), dim=-1)
            txt_f, scale = model.encode_text(tok, normalize=True), model.logit_scale.exp()
    loss = loss_fn(img_f.float(), txt_f.float(), scale.float())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, math.log(100))
    return float(loss.detach())


def train(args, arch, model, tokenizer, specs, images, mean, std, train_materials, t_start) -> dict:
    """The training loop, with progress, periodic evaluations, checkpoints and resume points."""
    import open_clip
    from tqdm import tqdm

    opt = make_optimizer(model, args)
    loss_fn = open_clip.loss.ClipLoss()
    sampler = BatchSampler(specs, args.groups_per_batch, args.seed)
    batch_size = args.groups_per_batch * GROUP
    settings = {k: str(v) for k, v in sorted(vars(args).items()) if k not in ("eval_every", "save_every", "resume_every", "workers", "eval_per_class")}
    loop = {"step": 0, "ema": None, "history": [], "evals": [], "train_s": 0.0}
    if args.resume_every:
        resumed = load_resume_point(args.ckpt_dir, model, opt, sampler, settings)
        if resumed is not None:
            loop = resumed
            print(f"resumed at step {loop['step']} from {args.ckpt_dir / RESUME_DIR}", flush=True)
    t_train0 = time.time() - loop["train_s"]
    t_session0, first_step = time.time(), loop["step"]
    bar = tqdm(range(loop["step"], args.steps), desc="pretrain", unit="step", mininterval=5.0, initial=loop["step"], total=args.steps)
    for step in bar:
        lv = train_step(step, args, model, tokenizer, opt, loss_fn, sampler, images, mean, std, arch["vision_cfg"])
        ema = loop["ema"] = lv if loop["ema"] is None else 0.98 * loop["ema"] + 0.02 * lv
        if step % 10 == 0 or step == args.steps - 1:
            bar.set_postfix(loss=f"{ema:.3f}", lr=f"{opt.param_groups[0]['lr']:.2e}", scale=f"{float(model.logit_scale.exp()):.1f}",
                            img_s=f"{(step + 1 - first_step) * batch_size / (time.time() - t_session0):.0f}")
        if step % 25 == 0 or step == args.steps - 1:
            loop["history"].append({"step": step, "loss": round(lv, 4), "loss_ema": round(ema, 4), "lr": opt.param_groups[0]["lr"],
                                    "elapsed_s": round(time.time() - t_start, 1)})
        done = loop["step"] = step + 1
        if args.save_every and done % args.save_every == 0 and done < args.steps:
            save_local_dir(model, arch, args.ckpt_dir / f"step_{done:05d}")
        if args.eval_every and done % args.eval_every == 0 and done < args.steps:
            ev = evaluate(model, tokenizer, mean, std, args.heldout, train_materials, max(20, args.eval_per_class // 2), arch["vision_cfg"]["image_size"])
            loop["evals"].append({"step": done, **ev})
            tqdm.write(f"step {done}: loss {ema:.3f} | " + " | ".join(f"{k} {v['acc']:.3f}" for k, v in ev.items()))
        if args.resume_every and done % args.resume_every == 0 and done < args.steps:
            loop["train_s"] = time.time() - t_train0
            save_resume_point(args.ckpt_dir, model, opt, sampler, loop, settings)
    bar.close()
    loop["train_s"] = time.time() - t_train0
    return loop


def stage_summary(args, arch, command, previous, n_params, t_corpus, loop, final, total) -> dict:
    import open_clip
    import torch

    return {
        "command": command,
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": args.groups_per_batch * GROUP,
        "groups_per_batch": args.groups_per_batch,
        "corpus": {"groups": args.groups, "pictures": args.groups * GROUP, "size": arch["vision_cfg"]["image_size"],
                   "train_materials": [m for m in P.MATERIALS if m != args.heldout and m not in DEMO_ONLY_MATERIALS],
                   "heldout_material": args.heldout, "demo_only_materials": list(DEMO_ONLY_MATERIALS),
                   "defects": list(P.DEFECTS), "colours": COLOUR_NAMES, "shape_fraction": args.shape_frac, "pattern_fraction": args.pattern_frac, "render_s": round(t_corpus, 1),
                   "severity": list(args.severity), "scale": list(args.scale)},
        "captions": {"mix_from_step": int(args.mix_from * args.steps), "p_full": P_FULL, "p_material": P_MATERIAL,
                     "p_generic": round(1 - P_FULL - P_MATERIAL, 2)},
        "crop_p": args.crop_p,
        "optimiser": {"name": "AdamW", "lr": args.lr, "betas": [0.9, 0.98], "eps": 1e-6, "weight_decay": args.wd,
                      "schedule": f"linear warm-up {args.warmup} steps, cosine to 0 by step", "amp": "none" if args.no_amp else "bf16 autocast"},
        "prompt_tokens": {"p": args.prompt_tokens_p, "max": args.prompt_tokens_max},
        "init_from": None if args.init_from is None else os.path.relpath(args.init_from, REPO),
        "previous": previous,
        "arch": arch_name(arch),
        "parameters": n_params,
        "zero_shot_templates": list(ZERO_SHOT_TEMPLATES),
        "train_s": round(loop["train_s"], 1),
        "total_s": round(total, 1),
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "threads": torch.get_num_threads(),
        "final_eval": final,
        "evals": loop["evals"],
        "loss_history": loop["history"],
    }


def run_stage(args, command: str) -> dict:
    """Render the corpus, train, evaluate and write one stage's model into args.out."""
    t_start = time.time()
    # Threads that sleep instead of spinning at OpenMP barriers: on a shared 2-core machine a spinning
    # thread whose partner was descheduled wastes its slice (measured 1.9 s vs 1.2 s per step while
    # another process used one core). Only takes effect if torch has not been imported yet.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import open_clip
    import torch

    torch.set_num_threads(2)
    arch = arch_config(args.image_size, args.patch_size)
    size = arch["vision_cfg"]["image_size"]
    train_materials = [m for m in P.MATERIALS if m != args.heldout and m not in DEMO_ONLY_MATERIALS]
    print(f"training materials: {train_materials}; held out: {args.heldout}; demo-only: {list(DEMO_ONLY_MATERIALS)}", flush=True)

    t0 = time.time()
    specs, images = build_corpus(args.seed, args.groups, train_materials, args.shape_frac, size, args.workers,
                                 tuple(args.severity), tuple(args.scale), args.pattern_frac)
    t_corpus = time.time() - t0
    print(f"corpus: {args.groups} groups x {GROUP} = {args.groups * GROUP} pictures of {size} px in {t_corpus:.0f} s", flush=True)

    model, previous = build_model(args, arch)
    tokenizer = open_clip.get_tokenizer(arch_name(arch))
    n_params = sum(p.numel() for p in model.parameters())
    longest = check_caption_length(tokenizer, arch)
    print(f"model {arch_name(arch)}: {n_params / 1e6:.2f} M parameters; a sampled long caption has {longest} tokens "
          f"(context {arch['text_cfg']['context_length']})", flush=True)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)

    loop = train(args, arch, model, tokenizer, specs, images, mean, std, train_materials, t_start)
    final = evaluate(model, tokenizer, mean, std, args.heldout, train_materials, args.eval_per_class, size)
    loop["evals"].append({"step": args.steps, **final})
    print("final zero-shot: " + " | ".join(f"{k} {v['acc']:.3f} (chance {v['chance']:.3f})" for k, v in final.items()), flush=True)

    save_local_dir(model, arch, args.out)
    total = time.time() - t_start
    summary = stage_summary(args, arch, command, previous, n_params, t_corpus, loop, final, total)
    (args.out / "pretrain_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    size_mb = (args.out / "open_clip_model.safetensors").stat().st_size / 1e6
    print(f"wrote {args.out} ({size_mb:.1f} MB weights); training {loop['train_s'] / 60:.1f} min, total {total / 60:.1f} min", flush=True)
    return summary


# The shipped model: stage 1 from scratch (64 px), stage 2 teaches it to tolerate visual prompt
# tokens, stage 3 moves it to 128 px input (patch 16, same 64 patches) on a corpus with smaller and
# fainter defects, keeping the prompt tokens. "{prev}" is the previous stage's output folder.
RECIPE: tuple[tuple[str, list[str]], ...] = (
    ("stage1", ["--seed", "0", "--save-every", "300", "--eval-every", "300"]),
    ("stage2", ["--init-from", "{prev}", "--steps", "300", "--warmup", "20", "--lr", "2e-4", "--mix-from", "0",
                "--prompt-tokens-p", "0.5", "--eval-every", "0"]),
    ("stage3", ["--init-from", "{prev}", "--image-size", "128", "--patch-size", "16", "--groups", "3000",
                "--severity", "0.35", "1.0", "--scale", "0.4", "1.4", "--steps", "500", "--warmup", "30", "--lr", "3e-4",
                "--mix-from", "0", "--prompt-tokens-p", "0.5", "--eval-every", "250", "--eval-per-class", "60",
                "--resume-every", "50"]),
)


MODEL_FILES = ("open_clip_model.safetensors", "open_clip_config.json", "zero_shot_templates.json", "pretrain_summary.json")


def run_recipe(args) -> int:
    """Stages 1, 2, 3 in sequence under --work-dir, starting after the last stage whose folder holds
    a finished model; then the last stage's model files are copied into --out."""
    folders = [args.work_dir / name for name, _ in RECIPE]
    finished = [i for i, f in enumerate(folders) if all((f / name).is_file() for name in MODEL_FILES)]
    start = finished[-1] + 1 if finished else 0
    prev = folders[start - 1] if start else None
    if start:
        print(f"{RECIPE[start - 1][0]} finished before, in {prev}", flush=True)
    for (name, stage_argv), folder in list(zip(RECIPE, folders))[start:]:
        argv = [a.replace("{prev}", str(prev)) for a in stage_argv] + ["--out", str(folder), "--ckpt-dir", str(args.work_dir / f"{name}_ckpt")]
        command = "python " + " ".join(shlex.quote(a) for a in ["scripts/pretrain_demo_clip.py"] + argv)
        print(f"{name}: {command}", flush=True)
        run_stage(parse_args(argv), command)
        prev = folder
    args.out.mkdir(parents=True, exist_ok=True)
    for path in sorted(prev.iterdir()):
        if path.name in MODEL_FILES or path.name.startswith("dapt-demo-vit-"):
            shutil.copy2(path, args.out / path.name)
    print(f"copied {RECIPE[-1][0]}'s model from {prev} into {args.out}", flush=True)
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.recipe:
        return run_recipe(args)
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO)] + (sys.argv[1:] if argv is None else list(argv)))
    run_stage(args, command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
