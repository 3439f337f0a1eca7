"""Sinks that misbehave: BaseExceptions, hangs, overridden `send`; none may stall a run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
import reactivex

import runstream as rs
from _support.invariants import check_invariants, settle
from runstream.sinks import SinkTimeout

pytestmark = pytest.mark.anyio


def emitter(n: int) -> rs.CompiledGraph:
    async def emit(state: dict[str, Any], ctx: rs.RunContext) -> None:
        for i in range(n):
            await ctx.custom("tick", i)

    g = rs.StateGraph(name="emitter")
    g.add_node("emit", emit)
    g.add_edge(rs.START, "emit")
    return g.compile()


def endless() -> rs.CompiledGraph:
    async def emit(state: dict[str, Any], ctx: rs.RunContext) -> None:
        while True:
            await ctx.custom("tick")

    g = rs.StateGraph(name="endless")
    g.add_node("emit", emit)
    g.add_edge(rs.START, "emit")
    return g.compile()


class Fatal(BaseException):
    """A BaseException that is neither an Exception nor a cancellation."""


class Sink:
    """Counts what it gets; checks that calls never overlap and close comes once, last."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.closes = 0
        self.in_call = False
        self.got_one = anyio.Event()

    async def send(self, item: Any) -> None:
        assert not self.in_call, "calls overlapped"
        assert self.closes == 0, "send after close"
        self.in_call = True
        try:
            await self.deliver(item)
        finally:
            self.in_call = False

    async def deliver(self, item: Any) -> None:
        await anyio.lowlevel.checkpoint()
        self.items.append(item)
        self.got_one.set()

    async def close(self) -> None:
        assert not self.in_call, "close during a send"
        self.closes += 1


class Raising(Sink):
    """Raises `error` from its `send` of item number `at`."""

    def __init__(self, error: BaseException, at: int = 50) -> None:
        super().__init__()
        self.error = error
        self.at = at

    async def deliver(self, item: Any) -> None:
        if len(self.items) == self.at:
            raise self.error
        await super().deliver(item)


class Hanging(Sink):
    """Hangs in its `send` of item number `at`, or in `close`; `entered` tells when."""

    def __init__(self, *, at: int | None = None, in_close: bool = False) -> None:
        super().__init__()
        self.at = at
        self.in_close = in_close
        self.entered = anyio.Event()
        self.never = anyio.Event()  # nobody sets it

    async def deliver(self, item: Any) -> None:
        if len(self.items) == self.at:
            self.entered.set()
            await self.never.wait()
        await super().deliver(item)

    async def close(self) -> None:
        await super().close()
        if self.in_close:
            self.entered.set()
            await self.never.wait()


# --- 1: every BaseException a sink raises is a sink failure -----------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "error",
    [asyncio.CancelledError("from the sink"), GeneratorExit(), Fatal("boom")],
    ids=["CancelledError", "GeneratorExit", "BaseException"],
)
async def test_a_base_exception_from_send_isolates_only_that_sink(error: BaseException) -> None:
    bad = Raising(error)
    good = [Sink(), Sink()]
    att = rs.attach(emitter(2000).run({}), good[0], bad, good[1], buffer=16)
    stats = await att.wait()
    assert att.errors == [error]
    assert stats[1].error is error
    assert stats[1].delivered == 50
    assert bad.closes == 1
    for sink in good:
        check_invariants(sink.items)
        assert len(sink.items) == 2003
        assert sink.items[-1].phase is rs.Phase.COMPLETED
        assert sink.closes == 1
    await settle()


@pytest.mark.timeout(10)
async def test_a_cancelled_error_from_send_with_on_sink_error_cancel_cancels_the_run() -> None:
    bad = Raising(asyncio.CancelledError())
    good = Sink()
    att = rs.attach(endless().run({}), bad, good, on_sink_error="cancel", buffer=16)
    await att.wait()
    assert isinstance(att.errors[0], asyncio.CancelledError)
    check_invariants(good.items)
    assert good.items[-1].phase is rs.Phase.CANCELED
    assert (bad.closes, good.closes) == (1, 1)
    await settle()


@pytest.mark.timeout(10)
async def test_a_base_exception_from_send_batch_isolates_that_sink() -> None:
    class BatchRaising(rs.MemorySink[rs.Event]):
        async def send_batch(self, items: Sequence[rs.Event]) -> None:
            raise GeneratorExit

    bad, good = BatchRaising(), rs.MemorySink[rs.Event]()
    att = rs.attach(emitter(2000).run({}), bad, good, buffer=16)
    stats = await att.wait()
    assert isinstance(stats[0].error, GeneratorExit)
    assert bad.closed
    assert len(good.items) == 2003
    assert good.closed


@pytest.mark.timeout(10)
async def test_a_cancelled_error_from_close_is_recorded_not_taken_for_a_cancel() -> None:
    class BadClose(rs.MemorySink[rs.Event]):
        async def close(self) -> None:
            raise asyncio.CancelledError

    sink = BadClose()
    (stats,) = await rs.drain(emitter(3).run({}), sink)
    assert isinstance(stats.error, asyncio.CancelledError)
    assert len(sink.items) == 6


@pytest.mark.timeout(10)
async def test_a_real_cancel_of_a_send_is_not_a_sink_error() -> None:
    sink = Hanging(at=5)
    att = rs.attach(endless().run({}), sink, buffer=16)
    await sink.entered.wait()
    att.dispose()  # cancels the send in progress: the sink did nothing wrong
    (stats,) = await att.wait()
    assert stats.error is None
    assert att.errors == []
    assert sink.closes == 1
    await settle()


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_or_system_exit_from_send_closes_the_sink_then_propagates(
    error: type[BaseException],
) -> None:
    bad = Raising(error(), at=5)
    good = Sink()

    async def main() -> None:
        await rs.drain(emitter(100).run({}), bad, good)

    with pytest.raises(error):
        asyncio.run(main())
    assert bad.closes == 1
    assert good.closes == 1


# --- 5: an overridden send wins over an inherited send_batch -----------------------


async def test_a_memory_sink_subclass_that_overrides_send_gets_every_item_there() -> None:
    class Upper(rs.MemorySink[str]):
        async def send(self, item: str) -> None:
            await super().send(item.upper())

    sink = Upper()
    (stats,) = await rs.drain(reactivex.from_iterable(["a", "b", "c"]), sink)
    assert sink.items == ["A", "B", "C"]
    assert stats.delivered == 3
    assert sink.closed


async def test_a_subclass_that_overrides_send_batch_gets_batches() -> None:
    class Batches(rs.MemorySink[int]):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[list[int]] = []

        async def send_batch(self, items: Sequence[int]) -> None:
            self.batches.append(list(items))
            await super().send_batch(items)

    class Again(Batches):  # overrides neither: the nearest definitions decide
        pass

    for sink in (Batches(), Again()):
        (stats,) = await rs.drain(reactivex.from_iterable(range(100)), sink)
        assert sink.items == list(range(100))
        assert sink.batches
        assert [i for b in sink.batches for i in b] == list(range(100))
        assert stats.delivered == 100


async def test_a_send_override_below_a_send_batch_override_wins() -> None:
    class Batches(rs.MemorySink[int]):
        async def send_batch(self, items: Sequence[int]) -> None:
            raise AssertionError("send_batch was overridden again below")

    class Single(Batches):
        async def send(self, item: int) -> None:
            self.items.append(item * 10)

    sink = Single()
    (stats,) = await rs.drain(reactivex.from_iterable(range(5)), sink)
    assert sink.items == [0, 10, 20, 30, 40]
    assert stats.error is None


# --- 8: a hanging sink is abandoned after close_timeout ----------------------------


@pytest.mark.timeout(10)
async def test_cancel_ends_an_attachment_whose_sink_hangs_in_send() -> None:
    stuck = Hanging(at=20)
    good = Sink()
    att = rs.attach(endless().run({}), stuck, good, buffer=16, close_timeout=0.2)
    await stuck.entered.wait()
    att.cancel()
    stats = await att.wait()
    assert isinstance(stats[0].error, SinkTimeout)
    assert att.errors == [stats[0].error]
    assert stuck.closes == 1  # abandoned, then closed
    assert stats[0].delivered == 20
    check_invariants(good.items)
    assert good.items[-1].phase is rs.Phase.CANCELED
    assert stats[1].error is None
    assert good.closes == 1
    await settle()


@pytest.mark.timeout(10)
async def test_cancel_ends_an_attachment_whose_sink_hangs_in_send_batch() -> None:
    class HangingBatches(rs.MemorySink[rs.Event]):
        def __init__(self) -> None:
            super().__init__()
            self.entered = anyio.Event()

        async def send_batch(self, items: Sequence[rs.Event]) -> None:
            if self.items:
                self.entered.set()
                await anyio.Event().wait()  # never set
            await super().send_batch(items)

    stuck, good = HangingBatches(), rs.MemorySink[rs.Event]()
    att = rs.attach(endless().run({}), stuck, good, buffer=16, close_timeout=0.2)
    await stuck.entered.wait()
    att.cancel()
    stats = await att.wait()
    assert isinstance(stats[0].error, SinkTimeout)
    assert "send_batch" in str(stats[0].error)
    assert stuck.closed
    assert good.items[-1].phase is rs.Phase.CANCELED
    await settle()


@pytest.mark.timeout(10)
async def test_a_run_timeout_ends_an_attachment_whose_sink_hangs_in_send() -> None:
    stuck = Hanging(at=20)
    good = Sink()
    stats = await rs.drain(endless().run({}, timeout=0.2), stuck, good, close_timeout=0.2)
    assert isinstance(stats[0].error, SinkTimeout)
    last = good.items[-1]
    assert last.phase is rs.Phase.CANCELED
    assert last.error.type == "TimeoutError"
    assert (stuck.closes, good.closes) == (1, 1)
    await settle()


@pytest.mark.timeout(10)
async def test_dispose_does_not_wait_for_a_close_that_hangs() -> None:
    stuck = Hanging(in_close=True)
    good = Sink()
    att = rs.attach(endless().run({}), stuck, good, buffer=16, close_timeout=0.2)
    await stuck.got_one.wait()
    att.dispose()
    await stuck.entered.wait()
    stats = await att.wait()
    assert isinstance(stats[0].error, SinkTimeout)
    assert stats[1].error is None
    assert good.closes == 1
    await settle()


@pytest.mark.timeout(10)
async def test_cancelling_drain_does_not_wait_for_a_close_that_hangs() -> None:
    stuck = Hanging(in_close=True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: rs.drain(endless().run({}), stuck, close_timeout=0.2))
        await stuck.got_one.wait()
        tg.cancel_scope.cancel()
    assert stuck.closes == 1
    await settle()


@pytest.mark.timeout(10)
async def test_a_close_that_hangs_after_the_run_completed_is_abandoned() -> None:
    stuck = Hanging(in_close=True)
    (stats,) = await rs.drain(emitter(10).run({}), stuck, close_timeout=0.2)
    assert isinstance(stats.error, SinkTimeout)
    assert "close" in str(stats.error)
    assert len(stuck.items) == 13  # every item was delivered before close hung
    await settle()


@pytest.mark.timeout(10)
async def test_a_slow_sink_that_keeps_going_is_not_abandoned() -> None:
    # close_timeout bounds one call, not the whole tail: sixty sends of at least
    # 10 ms each (0.6 s or more in all) after the stream ended, close_timeout 0.5 s.
    class Slow(Sink):
        async def deliver(self, item: Any) -> None:
            await anyio.sleep(0.01)
            self.items.append(item)

    sink = Slow()
    (stats,) = await rs.drain(reactivex.from_iterable(range(60)), sink, close_timeout=0.5)
    assert stats.error is None
    assert sink.items == list(range(60))
    assert sink.closes == 1


def test_close_timeout_is_checked() -> None:
    source = reactivex.empty()
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="close_timeout"):
            rs.attach(source, rs.MemorySink(), close_timeout=bad)
    with pytest.raises(TypeError, match="close_timeout"):
        rs.attach(source, rs.MemorySink(), close_timeout="5")  # type: ignore[arg-type]
