"""``core.heap.keep_freed_memory``: a large block comes from glibc's heap instead of a fresh mapping (each one
costing its page faults again), checked in a fresh process against one left as glibc starts."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
from asd_se.core.heap import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                    "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
if sys.argv[1] == "keep":
    keep_freed_memory()
before = libc.mallinfo2().hblks
block = libc.malloc(64 << 20)
print(libc.mallinfo2().hblks - before)
libc.free(ctypes.c_void_p(block))
"""


def _mapped_blocks(mode: str) -> int:
    """How many fresh mappings a 64 MB malloc made in a new process (``mode`` keep: after keep_freed_memory)."""
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_large_block_comes_from_the_heap_once_freed_memory_is_kept():
    try:
        ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        pytest.skip("not glibc 2.33 or later: keep_freed_memory does nothing here")
    assert _mapped_blocks("default") == 1  # glibc's own choice: a mapping of its own
    assert _mapped_blocks("keep") == 0
