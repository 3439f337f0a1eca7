"""attach and drain: fan-out, per-sink queues, overflow policies, sink errors, cancel."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest
import reactivex
from reactivex import operators as rx

import runstream as rs
from _support.invariants import check_invariants, settle

pytestmark = pytest.mark.anyio


def emitter(n: int, *, name: str = "emitter", fail_at: int | None = None) -> rs.CompiledGraph:
    async def emit(state: dict[str, Any], ctx: rs.RunContext) -> None:
        for i in range(n):
            if i == fail_at:
                raise RuntimeError(f"failed at {i}")
            await ctx.custom("tick", i)

    g = rs.StateGraph(name=name)
    g.add_node("emit", emit)
    g.add_edge(rs.START, "emit")
    return g.compile()


class RecordingSink:
    """Checks the sink contract: no overlapping sends, close once, after the last send."""

    def __init__(self, *, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.items: list[Any] = []
        self.closes = 0
        self.in_send = False
        self.delay = delay
        self.fail_at = fail_at

    async def send(self, item: Any) -> None:
        assert not self.in_send, "send calls overlapped"
        assert self.closes == 0, "send after close"
        self.in_send = True
        try:
            if self.fail_at is not None and len(self.items) == self.fail_at:
                raise ValueError(f"sink broke at {self.fail_at}")
            if self.delay:
                await anyio.sleep(self.delay)
            else:
                await anyio.lowlevel.checkpoint()
            self.items.append(item)
        finally:
            self.in_send = False

    async def close(self) -> None:
        assert not self.in_send
        self.closes += 1


async def test_one_subscription_one_run_for_every_sink() -> None:
    runs: list[str] = []

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        runs.append(ctx.run_id)
        await ctx.custom("x")

    g = rs.StateGraph(name="once")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    sinks = [RecordingSink() for _ in range(5)]
    stats = await rs.drain(g.compile().run({}), *sinks)
    assert len(runs) == 1
    first = sinks[0].items
    check_invariants(first)
    assert all(s.items == first for s in sinks)  # nobody missed the first events
    assert [s.closes for s in sinks] == [1] * 5
    assert [st.delivered for st in stats] == [len(first)] * 5


async def test_sinks_with_send_batch_get_batches_in_order() -> None:
    class Batches:
        def __init__(self) -> None:
            self.batches: list[list[Any]] = []
            self.closed = 0

        async def send(self, item: Any) -> None:
            raise AssertionError("send_batch should be used")

        async def send_batch(self, items: list[Any]) -> None:
            self.batches.append(list(items))

        async def close(self) -> None:
            self.closed += 1

    sink = Batches()
    (stats,) = await rs.drain(emitter(3000).run({}), sink)
    flat = [e for b in sink.batches for e in b]
    assert [e.seq for e in flat] == list(range(3003))
    assert len(sink.batches) < 3003
    assert stats.delivered == 3003
    assert sink.closed == 1


async def test_block_keeps_the_queue_bounded_with_a_slow_sink_and_loses_nothing() -> None:
    slow = RecordingSink(delay=0.0005)
    fast = rs.MemorySink[rs.Event]()
    source = emitter(400).run({}).pipe(rx.filter(lambda e: True), rx.map(lambda e: e))
    stats = await rs.drain(source, slow, fast, buffer=32)
    assert [e.seq for e in slow.items] == list(range(403))
    assert fast.items == slow.items
    assert all(st.max_queued <= 32 for st in stats)
    assert all(st.dropped == 0 for st in stats)


async def test_block_with_a_source_that_cannot_wait_keeps_every_item() -> None:
    def burst(observer: Any, scheduler: Any = None) -> None:
        for i in range(5000):  # all at once, in the subscribe call
            observer.on_next(i)
        observer.on_completed()

    sink = RecordingSink()
    (stats,) = await rs.drain(reactivex.create(burst), sink, buffer=10)
    assert sink.items == list(range(5000))
    assert stats.max_queued > 10  # the queue grew: a plain observable cannot wait
    assert stats.dropped == 0


@pytest.mark.parametrize("overflow", ["drop_oldest", "drop_newest"])
async def test_drop_policies_are_bounded_and_count_every_loss(overflow: str) -> None:
    sink = RecordingSink(delay=0.0002)
    (stats,) = await rs.drain(emitter(2000).run({}), sink, buffer=16, overflow=overflow)  # type: ignore[arg-type]
    seqs = [e.seq for e in sink.items]
    assert stats.dropped > 0
    assert stats.delivered + stats.dropped == 2003
    assert len(seqs) == stats.delivered
    assert stats.max_queued <= 16
    assert seqs == sorted(seqs)
    gaps = sum(b - a - 1 for a, b in itertools.pairwise(seqs))
    missing_at_ends = seqs[0] + (2002 - seqs[-1])
    assert gaps + missing_at_ends == stats.dropped  # seq shows exactly where the gaps are
    if overflow == "drop_oldest":
        assert seqs[-1] == 2002  # the newest survive, the terminal event too
    else:
        assert seqs[0] == 0


async def test_overflow_error_fails_only_that_sink() -> None:
    slow = RecordingSink(delay=0.001)
    fast = rs.MemorySink[rs.Event]()
    att = rs.attach(emitter(500).run({}), slow, fast, buffer=8, overflow="error")
    stats = await att.wait()
    assert isinstance(stats[0].error, rs.SinkOverflow)
    assert att.errors == [stats[0].error]
    assert slow.closes == 1
    assert len(fast.items) == 503


async def test_isolate_detaches_a_failing_sink_and_the_rest_get_everything() -> None:
    bad = RecordingSink(fail_at=100)
    good = [RecordingSink() for _ in range(2)]
    att = rs.attach(emitter(1000).run({}), good[0], bad, good[1])
    stats = await att.wait()
    assert len(bad.items) == 100
    assert bad.closes == 1
    assert isinstance(att.errors[0], ValueError)
    assert stats[1].error is att.errors[0]
    assert stats[1].delivered == 100
    for sink in good:
        assert [e.seq for e in sink.items] == list(range(1003))
        assert sink.closes == 1


async def test_on_sink_error_cancel_ends_the_run_canceled_for_the_survivors() -> None:
    bad = RecordingSink(fail_at=50)
    good = RecordingSink()
    att = rs.attach(emitter(100_000).run({}), bad, good, on_sink_error="cancel", buffer=16)
    await att.wait()
    check_invariants(good.items)
    last = good.items[-1]
    assert isinstance(last, rs.Workflow)
    assert last.phase is rs.Phase.CANCELED
    assert len(good.items) < 100_000
    assert (bad.closes, good.closes) == (1, 1)
    await settle()


async def test_cancel_delivers_the_canceled_event_then_closes_every_sink() -> None:
    sinks = [RecordingSink(delay=0.0001) for _ in range(3)]
    att = rs.attach(emitter(100_000).run({}), *sinks, buffer=64)
    await anyio.sleep(0.05)
    att.cancel()
    await att.wait()
    for sink in sinks:
        check_invariants(sink.items)
        assert sink.items[-1].phase is rs.Phase.CANCELED
        assert sink.closes == 1
    await settle()


async def test_dispose_stops_at_once_and_closes_every_sink() -> None:
    finally_ran = anyio.Event()

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        try:
            while True:
                await ctx.custom("tick")
        finally:
            finally_ran.set()

    g = rs.StateGraph(name="endless")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    sinks = [RecordingSink(delay=0.001), rs.MemorySink[rs.Event]()]
    att = rs.attach(g.compile().run({}), *sinks, buffer=16)
    await anyio.sleep(0.05)
    att.dispose()
    await att.wait()
    assert sinks[0].closes == 1
    assert sinks[1].closed
    await settle()
    assert finally_ran.is_set()


async def test_wait_raises_run_failed_after_every_sink_got_the_failed_event() -> None:
    sinks = [RecordingSink(), RecordingSink(delay=0.0001)]
    att = rs.attach(emitter(100, fail_at=50).run({}), *sinks)
    with pytest.raises(rs.RunFailed, match="failed at 50"):
        await att.wait()
    for sink in sinks:
        assert sink.items[-1].phase is rs.Phase.FAILED
        assert sink.closes == 1
    with pytest.raises(rs.RunFailed):
        await rs.drain(emitter(10, fail_at=5).run({}), rs.MemorySink())


async def test_a_sink_whose_close_raises_is_reported() -> None:
    class BadClose(rs.MemorySink[rs.Event]):
        async def close(self) -> None:
            raise OSError("disk gone")

    sink = BadClose()
    att = rs.attach(emitter(3).run({}), sink)
    (stats,) = await att.wait()
    assert isinstance(stats.error, OSError)
    assert att.errors == [stats.error]


async def test_callback_sink_takes_sync_and_async_functions() -> None:
    seen: list[int] = []
    closed: list[bool] = []

    async def async_fn(e: rs.Event) -> None:
        seen.append(e.seq)

    await rs.drain(
        emitter(3).run({}),
        rs.CallbackSink(lambda e: seen.append(e.seq)),
        rs.CallbackSink(async_fn, on_close=lambda: closed.append(True)),
    )
    assert sorted(seen) == sorted([*range(6), *range(6)])
    assert closed == [True]


def test_bad_arguments_are_refused_clearly() -> None:
    source = reactivex.empty()
    with pytest.raises(ValueError, match="at least one sink"):
        rs.attach(source)
    with pytest.raises(ValueError, match="buffer"):
        rs.attach(source, rs.MemorySink(), buffer=0)
    with pytest.raises(ValueError, match="overflow must be one of"):
        rs.attach(source, rs.MemorySink(), overflow="spill")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_sink_error"):
        rs.attach(source, rs.MemorySink(), on_sink_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"sink 1 \(int\)"):
        rs.attach(source, rs.MemorySink(), 42)
    with pytest.raises(RuntimeError, match="event loop"):
        rs.attach(source, rs.MemorySink())


async def test_with_policy_gives_one_sink_its_own_queue_and_policy() -> None:
    slow = RecordingSink(delay=0.0005)
    lossless = rs.MemorySink[rs.Event]()
    att = rs.attach(
        emitter(300).run({}),
        lossless,
        rs.with_policy(slow, overflow="drop_newest", buffer=4),
        buffer=64,
    )
    stats = await att.wait()
    assert [e.seq for e in lossless.items] == list(range(303))
    assert stats[1].dropped > 0
    assert stats[1].max_queued <= 4
    with pytest.raises(ValueError, match="overflow must be one of"):
        rs.with_policy(slow, overflow="explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="buffer"):
        rs.with_policy(slow, buffer=-1)


async def test_dispose_before_the_pumps_start_still_closes_every_sink() -> None:
    sinks = [RecordingSink(), rs.MemorySink[rs.Event]()]
    att = rs.attach(emitter(100).run({}), *sinks)
    att.dispose()  # before the loop ran anything
    await att.wait()
    assert sinks[0].closes == 1
    assert sinks[1].closed
    await settle()


async def test_cancelling_the_task_that_awaits_drain_stops_the_run_and_closes_sinks() -> None:
    sink = RecordingSink(delay=0.001)
    async with anyio.create_task_group() as tg:
        tg.start_soon(rs.drain, emitter(1_000_000).run({}), sink)
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert sink.closes == 1
    assert len(sink.items) < 1_000_000
    await settle()


async def test_cancel_reaches_every_run_under_one_attachment() -> None:
    sink = RecordingSink()
    source = reactivex.merge(
        emitter(1_000_000, name="a").run({}), emitter(1_000_000, name="b").run({})
    )
    att = rs.attach(source, sink, buffer=64)
    await anyio.sleep(0.05)
    att.cancel()
    with anyio.fail_after(5):
        await att.wait()
    terminals = [e for e in sink.items if isinstance(e, rs.Workflow) and e.phase.is_terminal]
    assert sorted(e.agent for e in terminals) == ["a", "b"]
    assert all(e.phase is rs.Phase.CANCELED for e in terminals)
    await settle()
