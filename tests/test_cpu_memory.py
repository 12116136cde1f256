"""A CPU run keeps freed memory for its next step and gives it back afterwards (engine/cpu_memory.py).

Each check runs in a fresh interpreter: malloc's settings and heap are per process, and other tests in
this one (any tuning on the CPU) change them.
"""

import json
import resource
import subprocess
import sys
import textwrap

import pytest

from dapt_core.engine import cpu_memory

pytestmark = pytest.mark.skipif(not cpu_memory.supported(), reason="glibc's malloc only")

BUFFER_BYTES = 24 * 2**20  # a ViT-B activation buffer of batch 32 is about this size
BUFFERS_PER_STEP = 4
PAGES_PER_STEP = BUFFERS_PER_STEP * BUFFER_BYTES // resource.getpagesize()

# malloc and free called directly, so that the pattern is a tuning step's and nothing else's.
STEPS = textwrap.dedent(f"""
    import ctypes, json, resource
    from dapt_core.engine import cpu_memory

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]

    def rss_mib():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 2**20

    def steps(count=6):
        # Minor page faults per "step": allocate and fill the step's buffers, then free them.
        faults = []
        for _ in range(count):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            buffers = [libc.malloc({BUFFER_BYTES}) for _ in range({BUFFERS_PER_STEP})]
            for buffer in buffers:
                ctypes.memset(buffer, 1, {BUFFER_BYTES})
            for buffer in reversed(buffers):
                libc.free(buffer)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        return faults
""")


def _run(body: str) -> dict:
    script = STEPS + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_steps_reuse_freed_memory_inside_and_give_it_back_at_the_end():
    result = _run("""
        plain = steps()
        with cpu_memory.keep_freed_memory():
            kept = steps()
            held = rss_mib()
        after = rss_mib()
        print(json.dumps({"plain": plain, "kept": kept, "held": held, "after": after, "later": steps()}))
    """)
    # glibc's defaults: every step maps its buffers afresh (what costs a ViT-B run seconds)
    assert sum(result["plain"][1:]) > 4 * PAGES_PER_STEP
    # kept: after the first step, a step touches no new page
    assert sum(result["kept"][1:]) < PAGES_PER_STEP / 10
    # and the freed buffers go back to the system when the run ends
    assert result["held"] - result["after"] > 0.5 * BUFFERS_PER_STEP * BUFFER_BYTES / 2**20
    # and later work trims the heap again instead of holding its peak
    assert sum(result["later"][3:]) > PAGES_PER_STEP


def test_nested_users_keep_it_until_the_last_one_leaves():
    result = _run("""
        with cpu_memory.keep_freed_memory():
            with cpu_memory.keep_freed_memory():
                pass
            kept = steps()  # the inner exit must not have restored glibc's trimming
        print(json.dumps({"kept": kept}))
    """)
    assert sum(result["kept"][1:]) < PAGES_PER_STEP / 10


def test_disabled_leaves_malloc_alone():
    result = _run("""
        with cpu_memory.keep_freed_memory(enabled=False):
            plain = steps()
        print(json.dumps({"plain": plain}))
    """)
    assert sum(result["plain"][1:]) > 4 * PAGES_PER_STEP
