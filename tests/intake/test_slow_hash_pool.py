"""Intake's memory-hard hashes run on their own small pool, so at most that many scrypt
buffers exist at once however many reports arrive together (intake/hashing.py)."""

from __future__ import annotations

import asyncio
import threading
import time

from upstander.intake.hashing import SLOW_HASH_WORKERS, slow_hash
from upstander.intake.reports import receipts


async def test_at_most_the_pools_workers_hash_at_once() -> None:
    lock = threading.Lock()
    running = 0
    most = 0
    threads: set[str] = set()

    def work(index: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            threads.add(threading.current_thread().name)
        time.sleep(0.02)
        with lock:
            running -= 1
        return index

    results = await asyncio.gather(*(slow_hash(work, i) for i in range(12)))

    assert results == list(range(12))
    assert most <= SLOW_HASH_WORKERS
    assert all(name.startswith("intake-hash") for name in threads)


async def test_a_receipt_hashed_on_the_pool_verifies() -> None:
    code = receipts.new_code()
    stored = await slow_hash(receipts.hash_code, code)

    assert await slow_hash(receipts.verify_code, code, stored)
    assert not await slow_hash(receipts.verify_code, receipts.new_code(), stored)
