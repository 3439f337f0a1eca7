"""Bulk-synchronous execution: steps, reducers, routing, limits and failures."""

from __future__ import annotations

import operator
import threading
from typing import Annotated, Any, TypedDict

import anyio
import pytest

import runstream as rs
from _support.invariants import check_invariants, settle

pytestmark = pytest.mark.anyio


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    value: str
    count: int


async def collect(stream: rs.RunStream) -> list[rs.Event]:
    return [e async for e in stream]


def writer(tag: str) -> Any:
    async def node(state: State) -> dict[str, Any]:
        return {"log": [tag], "value": tag}

    return node


async def test_a_step_runs_its_nodes_concurrently_and_merges_in_name_order() -> None:
    both_running = anyio.Event()
    arrived: list[str] = []

    def node(tag: str) -> Any:
        async def fn(state: State) -> dict[str, Any]:
            arrived.append(tag)
            if len(arrived) == 2:
                both_running.set()
            with anyio.fail_after(2):
                await both_running.wait()  # deadlocks unless both run at once
            return {"log": [tag], "value": tag}

        return fn

    g = rs.StateGraph(State, name="par")
    for tag in ("b", "a", "c"):
        g.add_node(tag, node(tag))
    for tag in ("b", "a", "c"):
        g.add_edge(rs.START, tag)
    state = await g.compile().invoke({"log": ["start"]})
    assert state["log"] == ["start", "a", "b", "c"]  # reducer, node-name order
    assert state["value"] == "c"  # no reducer: last in name order


async def test_fan_in_waits_for_every_source_even_across_steps() -> None:
    g = rs.StateGraph(State, name="join")
    g.add_node("a", writer("a"))
    g.add_node("b1", writer("b1"))
    g.add_node("b2", writer("b2"))
    g.add_node("join", writer("join"))
    g.add_edge(rs.START, "a")
    g.add_edge(rs.START, "b1")
    g.add_edge("b1", "b2")
    g.add_edge(["a", "b2"], "join")
    state = await g.compile().invoke({})
    assert state["log"] == ["a", "b1", "b2", "join"]


async def test_a_router_can_fan_out_to_several_nodes_and_end() -> None:
    g = rs.StateGraph(State, name="fan")
    g.add_node("start", writer("start"))
    g.add_node("x", writer("x"))
    g.add_node("y", writer("y"))
    g.add_edge(rs.START, "start")
    g.add_conditional_edges("start", lambda s: ["y", "x"])
    g.add_conditional_edges("x", lambda s: rs.END)
    state = await g.compile().invoke({})
    assert state["log"] == ["start", "x", "y"]


async def test_async_routers_and_path_maps() -> None:
    async def route(state: State) -> str:
        return "go" if state.get("count", 0) < 3 else "stop"

    async def inc(state: State) -> dict[str, Any]:
        return {"count": state.get("count", 0) + 1}

    g = rs.StateGraph(State, name="loop")
    g.add_node("inc", inc)
    g.add_edge(rs.START, "inc")
    g.add_conditional_edges("inc", route, {"go": "inc", "stop": rs.END})
    assert (await g.compile().invoke({}))["count"] == 3


async def test_command_updates_and_routes() -> None:
    async def first(state: State) -> rs.Command:
        return rs.Command(update={"value": "first"}, goto="second")

    g = rs.StateGraph(State, name="cmd")
    g.add_node("first", first, destinations=["second"])
    g.add_node("second", writer("second"))
    g.add_edge(rs.START, "first")
    state = await g.compile().invoke({})
    assert state == {"value": "second", "log": ["second"]}


async def test_sync_nodes_run_in_a_worker_thread_and_nodes_may_skip_ctx() -> None:
    threads: list[bool] = []

    def sync_node(state: State) -> dict[str, Any]:
        threads.append(threading.current_thread() is threading.main_thread())
        return {"value": "sync"}

    async def with_ctx(state: State, ctx: rs.RunContext) -> dict[str, Any]:
        await ctx.custom("seen", state["value"])
        return {}

    g = rs.StateGraph(State, name="mixed")
    g.add_node("sync", sync_node)
    g.add_node("ctx", with_ctx)
    g.add_edge(rs.START, "sync")
    g.add_edge("sync", "ctx")
    events = await collect(g.compile().run({}))
    assert threads == [False]
    assert [e.data for e in events if isinstance(e, rs.Custom)] == ["sync"]


async def test_a_state_update_follows_every_node_with_its_delta() -> None:
    g = rs.StateGraph(State, name="upd")
    g.add_node("a", writer("a"))
    g.add_node("b", writer("b"))
    g.add_edge(rs.START, "a")
    g.add_edge("a", "b")
    events = await collect(g.compile().run({}))
    updates = [(e.node, e.updates) for e in events if isinstance(e, rs.StateUpdate)]
    assert updates == [("a", {"log": ["a"], "value": "a"}), ("b", {"log": ["b"], "value": "b"})]
    check_invariants(events)


async def test_state_values_that_are_not_json_appear_as_their_repr() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    async def node(state: dict[str, Any]) -> dict[str, Any]:
        return {"thing": Opaque()}

    g = rs.StateGraph(name="opaque")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    events = await collect(g.compile().run({}))
    assert [e.updates for e in events if isinstance(e, rs.StateUpdate)] == [{"thing": "<opaque>"}]


async def run_failing(g: rs.StateGraph, **kw: Any) -> tuple[list[rs.Event], rs.RunFailed]:
    events: list[rs.Event] = []

    async def consume() -> None:
        async for event in g.compile().run({}, **kw):
            events.append(event)

    with pytest.raises(rs.RunFailed) as info:
        await consume()
    check_invariants(events)
    last = events[-1]
    assert isinstance(last, rs.Workflow)
    assert last.phase is rs.Phase.FAILED
    assert last.error == info.value.error
    await settle()
    return events, info.value


async def test_max_steps_fails_the_run_naming_the_limit() -> None:
    g = rs.StateGraph(State, name="forever")
    g.add_node("spin", writer("x"))
    g.add_edge(rs.START, "spin")
    g.add_edge("spin", "spin")
    _, failed = await run_failing(g, max_steps=5)
    assert isinstance(failed.__cause__, rs.StepLimitError)
    assert "max_steps=5" in failed.error.message


async def test_a_router_returning_an_unknown_name_fails_the_run() -> None:
    g = rs.StateGraph(State, name="lost")
    g.add_node("a", writer("a"))
    g.add_edge(rs.START, "a")
    g.add_conditional_edges("a", lambda s: "nowhere")
    _, failed = await run_failing(g)
    assert isinstance(failed.__cause__, rs.RoutingError)
    assert "'nowhere'" in failed.error.message
    assert failed.error.type == "RoutingError"


async def test_a_raising_node_fails_the_run_and_cancels_its_siblings() -> None:
    sibling_finally = anyio.Event()

    async def boom(state: State) -> None:
        await anyio.sleep(0.01)
        raise ValueError("bad input")

    async def slow(state: State) -> None:
        try:
            await anyio.sleep(30)
        finally:
            sibling_finally.set()

    g = rs.StateGraph(State, name="boom")
    g.add_node("boom", boom)
    g.add_node("slow", slow)
    g.add_edge(rs.START, "boom")
    g.add_edge(rs.START, "slow")
    _, failed = await run_failing(g)
    assert isinstance(failed.__cause__, ValueError)
    assert failed.error == rs.ErrorInfo("ValueError", "bad input")
    assert sibling_finally.is_set()


async def test_bad_node_results_and_unknown_keys_fail_clearly() -> None:
    async def returns_int(state: State) -> int:
        return 3

    g = rs.StateGraph(State, name="bad")
    g.add_node("n", returns_int)
    g.add_edge(rs.START, "n")
    _, failed = await run_failing(g)
    assert "node 'n' returned int" in failed.error.message

    async def unknown_key(state: State) -> dict[str, Any]:
        return {"nope": 1}

    g = rs.StateGraph(State, name="bad")
    g.add_node("n", unknown_key)
    g.add_edge(rs.START, "n")
    _, failed = await run_failing(g)
    assert "'nope'" in failed.error.message


async def test_input_is_checked_when_the_run_is_made() -> None:
    g = rs.StateGraph(State, name="in")
    g.add_node("a", writer("a"))
    g.add_edge(rs.START, "a")
    app = g.compile()
    with pytest.raises(TypeError, match="must be a dict"):
        app.run("text")
    with pytest.raises(KeyError, match="'bogus'"):
        app.run({"bogus": 1})
    with pytest.raises(ValueError, match="max_steps"):
        app.run({}, max_steps=0)
