"""Checkpoints in one process: what each step saves, threads, suspending, resuming."""

from __future__ import annotations

import asyncio
import operator
import random
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import runstream as rs
from _support.apps import booker, steps
from _support.invariants import check_invariants, terminal

pytestmark = pytest.mark.anyio


class Recording(rs.MemoryCheckpointer):
    """Keeps every checkpoint saved, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.saved: list[tuple[str, bytes]] = []

    async def save_checkpoint(self, key: str, data: bytes) -> None:
        self.saved.append((key, data))
        await super().save_checkpoint(key, data)


def decoded(app: rs.CompiledGraph, data: bytes) -> rs.Checkpoint:
    from runstream.graph._checkpoint import decode_checkpoint

    return decode_checkpoint(data, app.spec.types)


async def collect(stream: Any) -> list[rs.Event]:
    return [event async for event in stream]


async def test_a_checkpoint_before_every_step_holds_state_next_nodes_step_and_seq() -> None:
    store = Recording()
    app = steps(store)
    events = await collect(app.run({}, run_id="r1"))
    check_invariants(events)
    runs = [decoded(app, data) for key, data in store.saved if key == "run/r1"]
    assert [c.next for c in runs] == [["s1"], ["s2"], ["s3"], ["s4"], ["s5"]]
    assert [c.step for c in runs] == [0, 1, 2, 3, 4]
    assert [c.state.get("trail", []) for c in runs] == [
        [],
        ["s1"],
        ["s1", "s2"],
        ["s1", "s2", "s3"],
        ["s1", "s2", "s3", "s4"],
    ]
    updates = [e for e in events if isinstance(e, rs.StateUpdate)]
    # Each checkpoint's seq is where its step's first event is.
    assert [c.seq for c in runs] == [1, *(u.seq + 1 for u in updates[:-1])]
    assert all(c.status == "running" and c.thread_id is None for c in runs)
    assert await app.load_checkpoint("r1") is None  # forgotten once the run ended


async def test_a_thread_starts_from_its_last_state_and_get_state_reads_it(
    tmp_path: Path,
) -> None:
    app = steps(rs.SqliteCheckpointer(tmp_path / "runs.db"))
    assert await app.get_state("t1") is None
    first = await app.invoke({}, thread_id="t1")
    assert first["trail"] == ["s1", "s2", "s3", "s4", "s5"]
    # Another process (another connection, another graph object) goes on with it.
    again = steps(rs.SqliteCheckpointer(tmp_path / "runs.db"))
    assert await again.get_state("t1") == first
    second = await again.invoke({"trail": ["user"]}, thread_id="t1")
    assert second["trail"] == [*first["trail"], "user", "s1", "s2", "s3", "s4", "s5"]
    assert await again.get_state("t1") == second
    assert await again.get_state("t2") is None


async def test_a_second_run_of_a_busy_thread_is_refused_and_nothing_is_lost() -> None:
    store = rs.MemoryCheckpointer()
    gate = asyncio.Event()

    class S(TypedDict, total=False):
        seen: Annotated[list[str], operator.add]

    holding = asyncio.Event()

    async def slow(state: S) -> S:
        holding.set()  # the first run holds the thread by now
        await gate.wait()
        return {"seen": ["slow"]}

    g = rs.StateGraph(S, name="slow")
    g.add_node("slow", slow)
    g.add_edge(rs.START, "slow")
    app = g.compile(checkpointer=store)
    first = asyncio.create_task(app.invoke({}, thread_id="t"))
    await holding.wait()
    with pytest.raises(rs.RunFailed, match="thread 't' has a run in progress") as refused:
        await app.invoke({"seen": ["second"]}, thread_id="t")
    assert isinstance(refused.value.__cause__, rs.ThreadBusy)
    gate.set()
    assert (await first)["seen"] == ["slow"]
    third = await app.invoke({"seen": ["third"]}, thread_id="t")
    assert third["seen"] == ["slow", "third", "slow"]
    assert "lock/t" not in store._data


async def test_a_state_that_cannot_be_saved_fails_naming_its_key() -> None:
    async def bad(state: dict[str, Any]) -> dict[str, Any]:
        return {"handle": object()}

    g = rs.StateGraph(name="bad")
    g.add_node("bad", bad)
    g.add_node("after", lambda s: None)
    g.add_edge(rs.START, "bad")
    g.add_edge("bad", "after")
    app = g.compile(checkpointer=rs.MemoryCheckpointer())
    events = await collect_failed(app.run({}))
    end = terminal(events, rs.Phase.FAILED)
    assert end.error is not None
    assert end.error.type == "CheckpointError"
    assert "state key 'handle' cannot be saved" in end.error.message


async def collect_failed(stream: Any) -> list[rs.Event]:
    events: list[rs.Event] = []
    try:
        async for event in stream:
            events.append(event)
    except rs.RunFailed:
        return events
    raise AssertionError("the run did not fail")


def test_compile_refuses_what_is_not_a_checkpointer() -> None:
    g = rs.StateGraph(name="g")
    g.add_node("a", lambda s: None)
    g.add_edge(rs.START, "a")
    with pytest.raises(TypeError, match="checkpointer must be a Checkpointer"):
        g.compile(checkpointer={})  # type: ignore[arg-type]
    app = g.compile()
    with pytest.raises(ValueError, match="no checkpointer"):
        app.run(suspend=True)


async def test_without_a_checkpointer_get_state_says_how_to_get_one() -> None:
    with pytest.raises(ValueError, match=r"checkpointer=rs\.MemoryCheckpointer"):
        await steps().get_state("t")


async def test_a_suspended_run_ends_its_stream_and_resumes_with_the_answer() -> None:
    store = rs.MemoryCheckpointer()
    app = booker(store)
    part1 = await collect(app.run({}, run_id="r", suspend=True))
    assert not any(isinstance(e, rs.Workflow) and e.phase.is_terminal for e in part1)
    ask = next(e for e in part1 if isinstance(e, rs.AwaitClarification))
    checkpoint = await app.load_checkpoint("r")
    assert checkpoint is not None
    assert (checkpoint.status, checkpoint.next, checkpoint.seq) == ("awaiting", ["book"], 3)
    assert [(a.request_id, a.answered) for a in checkpoint.awaits] == [(ask.request_id, False)]
    part2 = await collect(app.resume(checkpoint, answers={ask.request_id: "noon"}, suspend=True))
    tools = next(e for e in part2 if isinstance(e, rs.AwaitExternalTools))
    checkpoint = await app.load_checkpoint("r")
    assert checkpoint is not None
    part3 = await collect(app.resume(checkpoint, answers={tools.request_id: ["Oslo"]}))
    events = part1 + part2 + part3
    check_invariants(events)
    terminal(events, rs.Phase.COMPLETED)
    assert [e.data["superseded"] for e in events if isinstance(e, rs.Custom)] == [
        [1, 2],
        [4, 6],  # the second attempt at the step began after the first marker
    ]
    update = next(e for e in events if isinstance(e, rs.StateUpdate))
    assert update.updates == {"booked": ["noon", ["Oslo"]]}


async def test_a_run_waiting_in_its_task_saves_its_question_and_the_answer_goes_on() -> None:
    store = Recording()
    app = booker(store)
    inbox = rs.Inbox()
    events: list[rs.Event] = []
    async for event in app.run({}, run_id="r", inbox=inbox):
        events.append(event)
        if isinstance(event, rs.AwaitClarification):
            inbox.answer(event.request_id, "noon")
        elif isinstance(event, rs.AwaitExternalTools):
            inbox.answer(event.request_id, ["Oslo"])
    terminal(events, rs.Phase.COMPLETED)
    saved = [decoded(app, data) for key, data in store.saved if key == "run/r"]
    assert [c.status for c in saved] == ["running", "awaiting", "awaiting"]
    assert [(a.answered, a.value) for a in saved[2].awaits] == [(True, "noon"), (False, None)]


# --- crashes at random points of random graphs --------------------------------------


class Trail(TypedDict, total=False):
    trail: Annotated[list[str], operator.add]
    total: int


def random_graph(seed: int, store: rs.Checkpointer) -> rs.CompiledGraph:
    """A random DAG of 2-7 deterministic nodes: fan-out, joins, messages, tool calls."""
    rnd = random.Random(seed)
    n = rnd.randint(2, 7)
    names = [f"n{i}" for i in range(n)]

    def node(index: int) -> Any:
        async def run(state: Trail, ctx: rs.RunContext) -> Trail:
            seen = len(state.get("trail", []))
            async with ctx.stream_reply() as reply:
                for part in range(index % 3 + 1):
                    await reply.write(f"{names[index]}.{part} ")
            if index % 2:
                async with ctx.tool("add", {"n": index}) as call:
                    call.result = seen + index
            return {"trail": [f"{names[index]}@{seen}"], "total": state.get("total", 0) + index}

        return run

    g = rs.StateGraph(Trail, name=f"random{seed}")
    for i, name in enumerate(names):
        g.add_node(name, node(i))
    g.add_edge(rs.START, names[0])
    for i in range(1, n):
        sources = {names[rnd.randrange(i)]} | {names[j] for j in range(i) if rnd.random() < 0.3}
        if len(sources) > 1 and rnd.random() < 0.5:
            g.add_edge(sorted(sources), names[i])  # a join: after all of them
        else:
            for source in sorted(sources):
                g.add_edge(source, names[i])
    return g.compile(checkpointer=store, max_steps=100)


async def crash_and_resume(seed: int, crash: float) -> None:
    whole_store = Recording()
    app = random_graph(seed, whole_store)
    whole = await collect(app.run({}, run_id="r", thread_id="t"))
    final = await app.get_state("t")
    # The process dies after event `cut`, before the run's end: its log holds
    # the events up to it, its store the last checkpoint saved by then.
    cut = int(crash * (len(whole) - 2))
    saved = [decoded(app, data) for key, data in whole_store.saved if key == "run/r"]
    last = [c for c in saved if c.seq <= cut + 1][-1]
    logged = whole[: cut + 1]
    tail = [e for e in logged if e.seq >= last.step_seq]
    survivor = random_graph(seed, rs.MemoryCheckpointer())  # another process
    resumed = await collect(survivor.resume(last, seq=cut + 1, tail=tail, reason="worker_lost"))
    events = logged + resumed
    check_invariants(events)  # gap-free, each seq once, one end, all closed
    terminal(events, rs.Phase.COMPLETED)
    marker = resumed[0]
    assert isinstance(marker, rs.Custom)
    assert marker.name == "runstream.resumed"
    assert marker.seq == cut + 1
    assert await survivor.get_state("t") == final
    # The steps from the checkpoint on ran again, with the same updates.
    redone = [e.updates for e in resumed if isinstance(e, rs.StateUpdate)]
    updates = [e.updates for e in whole if isinstance(e, rs.StateUpdate)]
    assert sorted(map(repr, redone)) == sorted(map(repr, updates[len(updates) - len(redone) :]))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), crash=st.floats(0, 1))
def test_a_run_crashed_anywhere_resumes_to_the_final_state_of_an_uncrashed_one(
    seed: int, crash: float
) -> None:
    asyncio.run(crash_and_resume(seed, crash))


async def test_a_tool_call_open_around_a_suspending_question_ends_suspended() -> None:
    async def asks_in_a_tool(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
        async with ctx.tool("book") as call:
            call.result = await ctx.ask("For what time?")
        return {"at": call.result}

    g = rs.StateGraph(name="booker")
    g.add_node("book", asks_in_a_tool)
    g.add_edge(rs.START, "book")
    app = g.compile(checkpointer=rs.MemoryCheckpointer())
    first = await collect(app.run({}, run_id="r", suspend=True))
    end = next(e for e in first if isinstance(e, rs.ToolEnd))
    assert end.error is not None
    assert end.error.type == "Suspended"
    question = next(e for e in first if isinstance(e, rs.AwaitClarification))
    checkpoint = await app.load_checkpoint("r")
    assert checkpoint is not None
    rest = await collect(app.resume(checkpoint, answers={question.request_id: "noon"}))
    events = first + rest
    check_invariants(events)
    ends = [e for e in events if isinstance(e, rs.ToolEnd)]
    assert [(e.result, e.error is None) for e in ends] == [(None, False), ("noon", True)]
