"""SharedReads: the long polls a write wakes share one record read per change (ferry.engine.api.long_polls)."""
from __future__ import annotations

import asyncio
import threading

from ferry.engine.api.long_polls import SharedReads


def test_polls_that_saw_the_same_change_share_one_read_and_a_new_change_reads_again():
    reads = SharedReads()
    calls = []
    gate = threading.Event()

    def read() -> dict:
        calls.append(1)
        gate.wait(5)
        return {"n": len(calls)}

    async def main():
        polls = [asyncio.create_task(reads.read("m1", 3, read)) for _ in range(50)]
        await asyncio.sleep(0.1)
        assert reads.in_flight() == 1
        gate.set()
        got = await asyncio.gather(*polls)
        assert reads.in_flight() == 0
        again = await reads.read("m1", 4, read)       # a later change: a fresh read
        return got, again

    got, again = asyncio.run(main())
    assert got == [{"n": 1}] * 50 and len(calls) == 2 and again == {"n": 2}


def test_one_poll_going_away_does_not_cancel_the_read_the_others_wait_for():
    reads = SharedReads()
    gate = threading.Event()

    async def main():
        first = asyncio.create_task(reads.read("m1", 0, lambda: gate.wait(5) and {"ok": True}))
        second = asyncio.create_task(reads.read("m1", 0, lambda: {"never": "called"}))
        await asyncio.sleep(0.05)
        first.cancel()
        gate.set()
        return await second

    assert asyncio.run(main()) == {"ok": True}
