"""Runs as cold observables: subscription, iteration, cancellation, backpressure."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reactivex import operators as ops

import runstream as rs
from _support.invariants import check_invariants, settle
from runstream._flow import Flow, subscribing

pytestmark = pytest.mark.anyio


def emitter(n: int, *, delay: float = 0.0, name: str = "emitter") -> rs.CompiledGraph:
    async def emit(state: dict[str, Any], ctx: rs.RunContext) -> None:
        for i in range(n):
            await ctx.custom("tick", i)
            if delay:
                await anyio.sleep(delay)

    g = rs.StateGraph(name=name)
    g.add_node("emit", emit)
    g.add_edge(rs.START, "emit")
    return g.compile()


async def test_each_subscription_is_a_new_run() -> None:
    started: list[int] = []

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        started.append(1)
        await ctx.custom("x")

    g = rs.StateGraph(name="cold")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    app = g.compile()
    before = asyncio.all_tasks()
    stream = app.run({})
    assert asyncio.all_tasks() == before  # no task: nothing runs until subscribed
    assert started == []
    first = [e async for e in stream]
    second = [e async for e in stream]
    assert started == [1, 1]
    assert first[0].run_id != second[0].run_id
    assert {e.run_id for e in first} == {first[0].run_id}
    check_invariants(first)
    check_invariants(second)


async def test_a_given_run_id_and_thread_id_are_used() -> None:
    events = [e async for e in emitter(2).run({}, run_id="r-1", thread_id="t-1")]
    assert {(e.run_id, e.thread_id, e.agent) for e in events} == {("r-1", "t-1", "emitter")}


async def test_subscribe_with_reactivex_operators() -> None:
    done = anyio.Event()
    got: list[int] = []
    emitter(10).run({}).pipe(
        ops.filter(lambda e: isinstance(e, rs.Custom)),
        ops.map(lambda e: e.data),
    ).subscribe(got.append, on_completed=done.set)
    with anyio.fail_after(5):
        await done.wait()
    assert got == list(range(10))


def test_subscribing_without_a_running_loop_says_what_to_do() -> None:
    stream = emitter(1).run({})
    with pytest.raises(RuntimeError, match=r"app\.stream"):
        stream.subscribe(lambda e: None)
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        stream.subscribe(lambda e: None, on_error=lambda e: None)


async def test_disposing_cancels_the_run_and_its_finally_runs() -> None:
    cleaned = anyio.Event()
    entered = anyio.Event()

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        entered.set()
        try:
            await anyio.sleep(60)
        finally:
            cleaned.set()

    g = rs.StateGraph(name="long")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    got: list[rs.Event] = []
    completed: list[bool] = []
    sub = g.compile().run({}).subscribe(got.append, on_completed=lambda: completed.append(True))
    with anyio.fail_after(5):
        await entered.wait()
    sub.dispose()
    await settle()
    assert cleaned.is_set()
    assert completed == []
    assert [type(e) for e in got] == [rs.Workflow]  # nothing after disposal


async def test_breaking_out_of_async_for_cancels_the_run() -> None:
    cleaned = anyio.Event()

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        try:
            for i in range(1_000_000):
                await ctx.custom("tick", i)
        finally:
            cleaned.set()

    g = rs.StateGraph(name="endless")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    async for event in g.compile().run({}):
        if event.seq == 10:
            break
    await settle()
    assert cleaned.is_set()


async def test_async_for_buffer_is_bounded_and_the_run_waits() -> None:
    lags: list[int] = []
    consumed = 0

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        for i in range(5000):
            await ctx.custom("tick", i)
            lags.append(i + 2 - consumed)  # emitted (plus started) minus consumed

    g = rs.StateGraph(name="bp")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    async for _event in g.compile().run({}):
        consumed += 1
        if consumed % 100 == 0:
            await asyncio.sleep(0)  # a consumer that does some async work
    assert consumed == 5000 + 3  # started, 5000 ticks, state update, completed
    assert max(lags) <= 2 * 1024  # the buffer plus the chunk being consumed


async def test_a_paused_flow_holds_the_run_through_operators() -> None:
    flow = Flow()
    got: list[Any] = []
    done = anyio.Event()
    source = emitter(100).run({}).pipe(ops.filter(lambda e: isinstance(e, rs.Custom)))
    flow.pause("test")
    with subscribing(flow):
        source.subscribe(lambda e: got.append(e.data), on_completed=done.set)
    for _ in range(1000):  # loop turns, until the run's first emit waits for room
        if flow.waiting:
            break
        await asyncio.sleep(0)
    assert flow.waiting == 1
    assert got == []  # and nothing went past it
    flow.resume("test")
    with anyio.fail_after(5):
        await done.wait()
    assert got == list(range(100))


async def test_a_cancel_request_ends_with_a_canceled_event_then_completion() -> None:
    flow = Flow()
    got: list[rs.Event] = []
    done = anyio.Event()
    with subscribing(flow):
        emitter(10_000, delay=0.001).run({}).subscribe(got.append, on_completed=done.set)
    await anyio.sleep(0.02)
    flow.request_cancel()
    with anyio.fail_after(5):
        await done.wait()
    check_invariants(got)
    last = got[-1]
    assert isinstance(last, rs.Workflow)
    assert last.phase is rs.Phase.CANCELED
    await settle()


async def test_a_timeout_cancels_the_run() -> None:
    events = [e async for e in emitter(10_000, delay=0.01).run({}, timeout=0.05)]
    check_invariants(events)
    last = events[-1]
    assert isinstance(last, rs.Workflow)
    assert last.phase is rs.Phase.CANCELED
    assert last.error is not None
    assert last.error.type == "TimeoutError"
    with pytest.raises(rs.RunCanceled, match="timed out"):
        await emitter(10_000, delay=0.01).invoke({}, timeout=0.05)
    await settle()


async def test_failure_reaches_on_error_as_run_failed_after_the_terminal_event() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.custom("before")
        raise KeyError("missing")

    g = rs.StateGraph(name="fails")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    app = g.compile()
    got: list[rs.Event] = []
    errors: list[Exception] = []
    done = anyio.Event()

    def on_error(exc: Exception) -> None:
        errors.append(exc)
        done.set()

    app.run({}).subscribe(got.append, on_error)
    with anyio.fail_after(5):
        await done.wait()
    assert isinstance(errors[0], rs.RunFailed)
    assert isinstance(errors[0].__cause__, KeyError)
    assert isinstance(got[-1], rs.Workflow)
    assert got[-1].phase is rs.Phase.FAILED
    with pytest.raises(rs.RunFailed) as info:
        await app.invoke({})
    assert isinstance(info.value.__cause__, KeyError)


async def test_events_of_parallel_nodes_are_live() -> None:
    b_emitted = anyio.Event()

    async def a(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.custom("a1")
        with anyio.fail_after(2):
            await b_emitted.wait()
        await ctx.custom("a2")

    async def b(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.custom("b1")
        b_emitted.set()

    g = rs.StateGraph(name="live")
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(rs.START, "a")
    g.add_edge(rs.START, "b")
    names = [e.name async for e in g.compile().run({}) if isinstance(e, rs.Custom)]
    assert names == ["a1", "b1", "a2"]


async def test_a_busy_node_does_not_starve_its_sibling() -> None:
    async def busy(state: dict[str, Any], ctx: rs.RunContext) -> None:
        for i in range(5000):
            await ctx.custom("busy", i)

    async def other(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.custom("other")

    g = rs.StateGraph(name="fair")
    g.add_node("busy", busy)
    g.add_node("other", other)
    g.add_edge(rs.START, "busy")
    g.add_edge(rs.START, "other")
    names = [e.name for e in [e async for e in g.compile().run({})] if isinstance(e, rs.Custom)]
    assert names.index("other") < 1000


def test_stream_runs_in_synchronous_code() -> None:
    events = list(emitter(50).stream({}))
    check_invariants(events)
    assert [e.data for e in events if isinstance(e, rs.Custom)] == list(range(50))


def test_breaking_out_of_stream_cancels_the_run() -> None:
    cleaned: list[bool] = []

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        try:
            for i in range(1_000_000):
                await ctx.custom("tick", i)
        finally:
            cleaned.append(True)

    g = rs.StateGraph(name="endless")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    it = g.compile().stream({})
    for event in it:
        if event.seq > 5:
            break
    it.close()  # type: ignore[attr-defined]
    assert cleaned == [True]


def test_stream_raises_run_failed() -> None:
    async def node(state: dict[str, Any]) -> None:
        raise RuntimeError("nope")

    g = rs.StateGraph(name="f")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    with pytest.raises(rs.RunFailed, match="nope"):
        list(g.compile().stream({}))


async def test_stream_refuses_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="async for"):
        next(iter(emitter(1).stream({})))


async def test_a_node_that_subscribes_to_another_run_does_not_inherit_the_flow() -> None:
    inner_app = emitter(3000, name="inner")

    async def outer(state: dict[str, Any], ctx: rs.RunContext) -> None:
        count = 0
        async for _ in inner_app.run({}):
            count += 1
        await ctx.custom("inner-events", count)

    g = rs.StateGraph(name="outer")
    g.add_node("outer", outer)
    g.add_edge(rs.START, "outer")
    flow = Flow()
    done = anyio.Event()
    got: list[rs.Event] = []
    flow.pause("outer-consumer")  # would deadlock the inner run if it leaked
    with subscribing(flow):
        g.compile().run({}).subscribe(got.append, on_completed=done.set)
    await anyio.sleep(0.01)
    flow.resume("outer-consumer")
    with anyio.fail_after(5):
        await done.wait()
    assert [e.data for e in got if isinstance(e, rs.Custom)] == [3003]


@st.composite
def shapes(draw: st.DrawFn) -> list[tuple[int, bool, bool]]:
    count = draw(st.integers(1, 4))
    return [
        (draw(st.integers(0, 20)), draw(st.booleans()), draw(st.booleans())) for _ in range(count)
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=shapes(), fail_at=st.integers(-1, 3))
def test_any_run_tree_keeps_the_invariants(
    shape: list[tuple[int, bool, bool]], fail_at: int
) -> None:
    child_app = emitter(3, name="child")

    def make(index: int, n: int, tool: bool, child: bool) -> Any:
        async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
            for i in range(n):
                await ctx.custom("x", i)
                if i % 3 == 0:
                    await anyio.lowlevel.checkpoint()
            if tool:
                async with ctx.tool("t", {"i": index}) as call:
                    await call.update(progress=0.5)
                    call.result = index
            if child:
                await ctx.call_agent(child_app, {})
            if index == fail_at:
                raise ValueError(f"node {index}")

        return node

    g = rs.StateGraph(name="tree")
    for index, (n, tool, child) in enumerate(shape):
        g.add_node(f"n{index}", make(index, n, tool, child))
        g.add_edge(rs.START, f"n{index}")
    app = g.compile()

    async def main() -> list[rs.Event]:
        events: list[rs.Event] = []
        try:
            async for event in app.run({}):
                events.append(event)
        except rs.RunFailed:
            assert fail_at < len(shape)
        else:
            assert not 0 <= fail_at < len(shape)
        return events

    events = asyncio.run(main())
    check_invariants(events)
    roots = [e for e in events if e.parent_run_id is None]
    assert roots[-1].phase is (  # type: ignore[union-attr]
        rs.Phase.FAILED if 0 <= fail_at < len(shape) else rs.Phase.COMPLETED
    )


async def test_observable_from_reactivex_interop_still_works() -> None:
    # A RunStream composes with plain reactivex observables.
    done = anyio.Event()
    got: list[Any] = []
    reactivex.concat(reactivex.of("start"), emitter(2).run({}).pipe(ops.count())).subscribe(
        got.append, on_completed=done.set
    )
    with anyio.fail_after(5):
        await done.wait()
    assert got == ["start", 5]


async def test_async_for_over_a_run_piped_through_runstream_operators() -> None:
    from runstream import ops

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        async with ctx.stream_reply() as m:
            for word in ("one ", "two ", "three"):
                await m.write(word)
        async with ctx.tool("t", {"x": 1}) as call:
            call.result = 2

    g = rs.StateGraph(name="piped")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    app = g.compile()
    ends = [e async for e in app.run({}).pipe(ops.of_type(rs.ToolEnd))]
    assert [e.result for e in ends] == [2]
    replies = [
        e
        async for e in app.run({}).pipe(
            ops.coalesce_text(window=10.0), ops.of_type(rs.AssistantReply)
        )
    ]
    assert "".join(e.text for e in replies) == "one two three"
    assert len(replies) == 1  # merged: the done chunk flushed it, no need to wait 10 s


async def test_async_for_over_a_piped_run_is_bounded_and_break_cancels() -> None:
    from runstream import ops

    cleaned = anyio.Event()
    lags: list[int] = []
    consumed = 0

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        try:
            for i in range(1_000_000):
                await ctx.custom("tick", i)
                lags.append(i + 2 - consumed)
        finally:
            cleaned.set()

    g = rs.StateGraph(name="endless")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    async for _event in g.compile().run({}).pipe(ops.root_only()):
        consumed += 1
        if consumed % 100 == 0:
            await asyncio.sleep(0)
        if consumed == 5000:
            break
    await settle()
    assert cleaned.is_set()
    assert max(lags) <= 2 * 1024
