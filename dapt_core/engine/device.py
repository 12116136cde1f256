"""Where tensors live and in which precision the frozen backbone runs."""

from __future__ import annotations

import contextlib

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


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Reduced precision for the frozen backbone: bf16 on GPUs that have it, else fp16 on CUDA;
    None (plain fp32) on the CPU and MPS, where autocast is slower or unreliable for CLIP."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device):
    """A context manager running matrix work in the device's reduced precision, if any."""
    dtype = autocast_dtype(device)
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
