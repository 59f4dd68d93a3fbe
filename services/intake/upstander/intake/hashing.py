"""Where intake's memory-hard hashing runs: receipt codes (scrypt, 16 MiB each), record and
escrow code keys (scrypt, 32 MiB).

Run on the default thread pool, each hash took its buffer from the arena of whichever worker
thread picked it up; glibc raises its mmap threshold after the first such buffer is freed, so
the later ones were carved out of those arenas and stayed there (intake grew to 310 MB after
3,000 reports, and did not give it back). Two things keep it flat:

- the hashes run on their own small pool (`SLOW_HASH_WORKERS` threads, one per core: scrypt
  is CPU-bound and releases the GIL, so more threads than cores buy nothing), so at most that
  many buffers exist at once, whatever the flood;
- the mmap threshold is pinned (`mallopt(M_MMAP_THRESHOLD)`, glibc only; elsewhere a no-op),
  so a buffer that large is mapped for the hash and unmapped after it, back to the system.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

log = logging.getLogger("upstander.intake.hashing")

# One per core (at least two, at most four): scrypt is CPU-bound and releases the GIL.
SLOW_HASH_WORKERS = min(4, max(2, os.cpu_count() or 2))
# Allocations from this size up are mapped and unmapped on their own (glibc's default starts at
# 128 KiB but grows, up to 32 MiB, each time such a block is freed: that growth is the leak).
MMAP_THRESHOLD_BYTES = 1024 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


def _pin_mmap_threshold() -> bool:
    """Pin glibc's mmap threshold (see the module); False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        if not _pin_mmap_threshold():
            log.debug("mmap threshold not pinned (no glibc)")
        _executor = ThreadPoolExecutor(
            max_workers=SLOW_HASH_WORKERS, thread_name_prefix="intake-hash"
        )
    return _executor


async def slow_hash(function: Callable[..., T], *args: object) -> T:
    """`function(*args)` (a memory-hard hash) on the hashing pool, awaited."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(function, *args))
