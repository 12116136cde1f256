"""Keep the memory a CPU run frees for its next step instead of handing it back to the system.

A tuning step on the CPU allocates and frees the same activation buffers every step. glibc's malloc
returns freed memory at the top of its heap to the system once more than twice its mmap threshold is
free there, and serves buffers above that threshold with fresh mmap()s, so each step pays again for
zero-filled pages, in page faults and system time. benchmarks/cpu_memory.py measures what keeping them
saves (page faults, system time, the training loop's and the whole command's seconds, with and without)
on a ViT-B-32 run of `dapt tune`; the encoding passes run in CPU-sized chunks (prompts.CPU_ENCODE_CHUNK)
so that their buffers fit under the threshold below too. For a narrow tower such as the demo model's the
buffers are small and the gain is within noise.

While `keep_freed_memory()` is active, buffers up to glibc's largest mmap threshold (32 MiB on 64-bit
systems; a ViT-B activation of batch 32 is under 27 MiB) come from the heap, and the heap is never
trimmed. Larger ones are still mapped each time: serving them from the heap too made it grow by a
whole buffer a step in a measurement, since an aligned allocation does not fit back into the hole
the previous one left. On exit the heap is trimmed again at twice the threshold, as glibc's own
adaptive setting would have it, and malloc_trim gives back what the run freed, so a long-lived
process such as the app does not hold a finished run's peak. Other C libraries (musl, macOS, Windows)
are left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
import threading

# mallopt() parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LARGEST_MMAP_THRESHOLD = 32 * 2**20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems
_NEVER_TRIM = 2**31 - 1  # mallopt takes an int

_lock = threading.Lock()
_active = 0  # nested or concurrent users: the settings change on the first entry and the last exit


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The process's glibc, or None where malloc is someone else's."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        if not all(hasattr(libc, name) for name in ("gnu_get_libc_version", "mallopt", "malloc_trim")):
            return None  # gnu_get_libc_version: only glibc's parameters are known here
    except OSError:
        return None
    return libc


def supported() -> bool:
    return _glibc() is not None


@contextlib.contextmanager
def keep_freed_memory(enabled: bool = True):
    """Within the block, malloc keeps what is freed for reuse (see the module's docstring). Nests and
    may be entered from several threads: the settings apply from the first entry to the last exit."""
    global _active
    libc = _glibc() if enabled else None
    if libc is None:
        yield
        return
    with _lock:
        _active += 1
        if _active == 1:
            libc.mallopt(_M_MMAP_THRESHOLD, _LARGEST_MMAP_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM)
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                # Setting either parameter ended glibc's adaptive mode for good; these are the values it
                # adapts to under a tuning run's buffers.
                libc.mallopt(_M_TRIM_THRESHOLD, 2 * _LARGEST_MMAP_THRESHOLD)
                libc.malloc_trim(0)


def on_the_cpu(function):
    """For a function whose first argument is a Backbone: keep_freed_memory() around the call when that
    backbone runs on the CPU."""
    @functools.wraps(function)
    def keeping(backbone, *args, **kwargs):
        with keep_freed_memory(backbone.device.type == "cpu"):
            return function(backbone, *args, **kwargs)
    return keeping
