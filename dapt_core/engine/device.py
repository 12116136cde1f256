"""Where tensors live and in which precision the frozen backbone runs."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable

import torch

from ..errors import ConfigError


def pick_device(requested: str | None = None) -> torch.device:
    """The device to run on: `requested` if given ("cpu", "cuda", "cuda:1", "mps"), else CUDA,
    then Apple MPS, then the CPU."""
    if requested and requested != "auto":
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"Device '{requested}' was requested but no CUDA GPU is visible; use --device cpu.")
        if device.type == "mps" and not _mps_available():
            raise ConfigError(f"Device '{requested}' was requested but Apple MPS is not available; use --device cpu.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


# "fp32" keeps every device in plain float32 (the tests do, to compare with the reference exactly); "bf16"
# runs the frozen towers in bfloat16 on any CPU or GPU (to measure what it gives, benchmarks/cpu_step_profile.py).
PRECISION_ENV = "DAPT_PRECISION"
PRECISIONS = ("auto", "fp32", "bf16")
# On a CPU, bf16 pays only where the matrix products dominate: measured on two AMX cores, a ViT-B-32
# (width 768) step took 1.2 s against 2.6 s in fp32, while towers of width 128 and 192 (the demo model)
# were no faster or slower, their time going to the casts and the element-wise work. Wider towers use bf16
# where cpu_bf16_check measures that it pays on this CPU.
CPU_BF16_MIN_WIDTH = 512


def autocast_dtype(device: torch.device, width: int | None = None,
                   cpu_bf16_pays: Callable[[], bool] | None = None) -> torch.dtype | None:
    """Reduced precision for a frozen backbone of this transformer `width`: bf16 on GPUs that have
    it, else fp16 on CUDA; bf16 on CPUs for towers of CPU_BF16_MIN_WIDTH and wider where `cpu_bf16_pays()`
    says a measured block runs faster in bf16 (engine/cpu_bf16_check.py: CPUs with AMX or AVX-512 BF16); None (plain
    fp32) on other CPUs and MPS, where autocast is slower or unreliable for CLIP, and everywhere when
    $DAPT_PRECISION is "fp32" ("bf16" forces it). The prompts, losses and optimiser stay in fp32."""
    precision = os.environ.get(PRECISION_ENV, "auto").strip().lower() or "auto"
    if precision not in PRECISIONS:
        raise ConfigError(f"{PRECISION_ENV}={precision!r} is not a precision; use one of: {', '.join(PRECISIONS)}.")
    if precision == "fp32":
        return None
    if precision == "bf16" and device.type in ("cpu", "cuda"):
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if (device.type == "cpu" and width is not None and width >= CPU_BF16_MIN_WIDTH and cpu_bf16_pays is not None
            and cpu_bf16_pays()):
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """A context manager running matrix work on `device` in `dtype` (see autocast_dtype); None: fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def describe(device: torch.device) -> str:
    """A short human name for the device, e.g. 'NVIDIA H100 (cuda:0)' or 'CPU (2 threads)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"{torch.cuda.get_device_name(index)} (cuda:{index})"
    if device.type == "mps":
        return "Apple GPU (mps)"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"


@functools.cache
def describe_cpu() -> str:
    """The CPU's model and the instructions that decide its speed here, e.g. 'AMD EPYC 9R14, 2 cores,
    AVX-512, AVX-512 BF16, no AMX' (benchmarks name the CPU with every timing)."""
    import os
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass  # not Linux: the platform's name is all there is
    features = [name for flag, name in (("avx512f", "AVX-512"), ("avx512_bf16", "AVX-512 BF16"),
                                        ("amx_tile", "AMX")) if flag in flags]
    if flags and "amx_tile" not in flags:
        features.append("no AMX")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return ", ".join([model, f"{cores} cores", *features])
