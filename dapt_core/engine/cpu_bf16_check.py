"""Whether bf16 makes this CPU's tuning steps faster: measured on this CPU, not assumed from its features.

bf16 matrix products run faster than fp32 on CPUs with AMX tiles (Intel Xeon since Sapphire Rapids) and on
those with AVX-512 BF16 instructions (AMD Zen 4 and later, Intel Cooper Lake), by amounts that differ with
the CPU, the torch build and the tower's width; on CPUs without either, bf16 runs slower than fp32. So the
first wide backbone on a machine times one block of its image tower, forward and backward as a tuning step
runs it (partial_blocks.block_forward, frozen weights, gradients to the tokens, a batch of PROBE_IMAGES
photos), in fp32 and under bf16 autocast, and bf16 is used where it is at least MIN_SPEEDUP times faster.
The answer is kept per CPU, torch version, thread count, width and token count in the cache folder
(`cpu-bf16.json`): the check costs about a second once per machine. benchmarks/cpu_step_profile.py measures
a whole step both ways. (open_clip's own block, through nn.MultiheadAttention, runs slower in bf16 than in
fp32 on such a CPU; block_forward, which the tuning step uses, does not.)
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import torch
from torch import nn

from .. import atomic
from .partial_blocks import block_forward, has_plain_blocks

RESULTS_FILE = "cpu-bf16.json"
# bf16 must save at least this share of a step: a smaller gain is within what casts and the machine's
# other work move from one run to the next.
MIN_SPEEDUP = 1.3
PROBE_IMAGES = 8  # the block runs on this many photos' tokens
PROBE_REPEATS = 3  # timed passes per precision, after one warm-up

_known: dict[str, float] = {}
_lock = threading.Lock()


def bf16_pays(visual: nn.Module, input_size: int, cpu: str, cache_dir: Path | None = None) -> bool:
    """Whether the image tower `visual` (an open_clip VisionTransformer taking `input_size` pixels) should run
    in bf16 on the CPU named `cpu` (device.describe_cpu(): this process's CPU). False for towers whose blocks
    the tuning step does not run through block_forward."""
    transformer = getattr(visual, "transformer", None)
    if transformer is None or not has_plain_blocks(transformer):
        return False
    patch = visual.conv1.kernel_size[0]
    tokens = (input_size // patch) ** 2 + 1
    width = int(transformer.width)
    key = f"{cpu}|torch {torch.__version__}|{torch.get_num_threads()} threads|width {width}|{tokens} tokens"
    with _lock:  # two sessions loading backbones at once measure once
        if key not in _known:
            _known[key] = _kept_or_measured(key, transformer.resblocks[0], tokens, width, cache_dir)
        return _known[key] >= MIN_SPEEDUP


def _kept_or_measured(key: str, block: nn.Module, tokens: int, width: int, cache_dir: Path | None) -> float:
    from .cache_folder import default_cache_dir

    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / RESULTS_FILE
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        kept = {}
    if isinstance(kept.get(key), (int, float)):
        return float(kept[key])
    kept[key] = measure_block_speedup(block, tokens, width)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(path, kept)
    except OSError:
        pass  # a read-only cache folder: measured again in the next process
    return kept[key]


def measure_block_speedup(block: nn.Module, tokens: int, width: int) -> float:
    """fp32 seconds / bf16 seconds of `block` (frozen) forward and backward to its input on PROBE_IMAGES x
    `tokens` tokens: above 1, bf16 is faster."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(PROBE_IMAGES, tokens, width, generator=generator)
    frozen = [parameter.requires_grad for parameter in block.parameters()]
    block.requires_grad_(False)
    try:
        def timed(bf16: bool) -> float:
            times = []
            for _ in range(PROBE_REPEATS + 1):
                x = inputs.clone().requires_grad_(True)
                started = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = block_forward(block, x)
                out.float().sum().backward()
                times.append(time.perf_counter() - started)
            return sorted(times[1:])[len(times[1:]) // 2]

        return timed(False) / timed(True)
    finally:
        for parameter, required in zip(block.parameters(), frozen):
            parameter.requires_grad_(required)
