"""The demand gate between a run and its consumer: first in, first out, one at a time."""

from __future__ import annotations

import asyncio

import pytest

from _support.invariants import settle
from runstream._flow import Flow

pytestmark = pytest.mark.anyio


async def _spin(rounds: int = 20) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def test_waiters_go_first_in_first_out() -> None:
    flow = Flow()
    flow.pause("consumer")
    order: list[int] = []

    async def emitter(i: int) -> None:
        await flow.wait()
        order.append(i)

    tasks = [asyncio.create_task(emitter(i)) for i in range(5)]
    await _spin()
    assert order == []
    flow.resume("consumer")
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def test_a_resume_lets_through_only_as_many_as_there_is_room_for() -> None:
    flow = Flow()
    flow.pause("consumer")
    went: list[int] = []

    async def emitter(i: int) -> None:
        await flow.wait()
        went.append(i)
        flow.pause("consumer")  # each emit fills the consumer again

    tasks = [asyncio.create_task(emitter(i)) for i in range(4)]
    await _spin()
    for expected in ([0], [0, 1], [0, 1, 2], [0, 1, 2, 3]):
        flow.resume("consumer")
        await _spin()
        assert went == expected
    await asyncio.gather(*tasks)


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    flow = Flow()
    flow.pause("consumer")
    went: list[str] = []

    async def emitter(name: str) -> None:
        await flow.wait()
        went.append(name)

    first = asyncio.create_task(emitter("first"))
    second = asyncio.create_task(emitter("second"))
    await _spin()
    flow.resume("consumer")  # the turn goes to `first`...
    first.cancel()  # ...which is cancelled before it runs
    await asyncio.gather(first, second, return_exceptions=True)
    assert went == ["second"]
    await settle()


async def test_wait_returns_at_once_when_not_paused() -> None:
    flow = Flow()
    await asyncio.wait_for(flow.wait(), 1)
    assert not flow.paused
    flow.pause("a")
    flow.pause("b")
    flow.resume("a")
    assert flow.paused
    flow.resume("b")
    assert not flow.paused


async def test_a_resume_wakes_one_waiter_not_all_of_them() -> None:
    # 200 parallel emitters blocked on one full consumer; each that gets through
    # fills it again. A resume must cost a wake-up or two, not 200.
    flow = Flow()
    flow.pause("consumer")
    went: list[int] = []

    async def emitter(i: int) -> None:
        await flow.wait()
        went.append(i)
        flow.pause("consumer")

    tasks = [asyncio.create_task(emitter(i)) for i in range(200)]
    await _spin()
    loop = asyncio.get_running_loop()
    scheduled = 0
    call_soon = loop.call_soon

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal scheduled
        scheduled += 1
        return call_soon(*args, **kwargs)

    loop.call_soon = counting  # type: ignore[method-assign]
    try:
        await _spin()
        idle = scheduled  # this task's own spinning
        flow.resume("consumer")
        await _spin()
    finally:
        del loop.call_soon
    assert went == [0]
    woken = scheduled - 2 * idle
    assert woken < 10, f"one resume scheduled {woken} callbacks"
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
