"""RunContext: every emit call, tool calls, child runs, and their failure modes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

import runstream as rs
from _support.invariants import check_invariants, settle
from _support.invariants import failure_of as run_to_failure
from runstream._flow import Flow, subscribing

pytestmark = pytest.mark.anyio

Node = Callable[[dict[str, Any], rs.RunContext], Awaitable[Any]]


def single(node: Node, *, name: str = "ctx", internal: bool = False) -> rs.CompiledGraph:
    g = rs.StateGraph(name=name)
    g.add_node("node", node, internal=internal)
    g.add_edge(rs.START, "node")
    return g.compile()


async def events_of(app: rs.CompiledGraph, **kw: Any) -> list[rs.Event]:
    events = [e async for e in app.run({}, **kw)]
    check_invariants(events)
    return events


async def failure_of(app: rs.CompiledGraph) -> tuple[list[rs.Event], rs.RunFailed]:
    return await run_to_failure(app.run({}))


def body(events: list[rs.Event]) -> list[rs.Event]:
    """The events between the first and the last Workflow, minus StateUpdates."""
    return [e for e in events[1:-1] if not isinstance(e, rs.StateUpdate)]


async def test_identity_of_the_context() -> None:
    seen: dict[str, Any] = {}

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        seen.update(
            run_id=ctx.run_id,
            thread_id=ctx.thread_id,
            agent=ctx.agent,
            node=ctx.node,
            parent=ctx.parent_run_id,
        )

    await events_of(single(node, name="who"), run_id="r9", thread_id="t9")
    assert seen == {
        "run_id": "r9",
        "thread_id": "t9",
        "agent": "who",
        "node": "node",
        "parent": None,
    }


async def test_reply_and_think_are_single_done_chunks() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.think("hmm")
        await ctx.reply("hello")

    thought, reply = body(await events_of(single(node)))
    assert isinstance(thought, rs.PlannerThought)
    assert (thought.text, thought.done, thought.node) == ("hmm", True, "node")
    assert isinstance(reply, rs.AssistantReply)
    assert (reply.text, reply.done) == ("hello", True)
    assert reply.message_id != thought.message_id


async def test_streamed_text_ends_with_a_done_chunk_even_on_error() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        async with ctx.stream_thought() as t:
            await t.write("a")
        async with ctx.stream_reply() as m:
            await m.write("one ")
            await m.write("")  # skipped
            await m.write("two")
            raise ValueError("cut off")

    events, failed = await failure_of(single(node))
    chunks = [(type(e).__name__, e.text, e.done) for e in body(events)]  # type: ignore[union-attr]
    assert chunks == [
        ("PlannerThought", "a", False),
        ("PlannerThought", "", True),
        ("AssistantReply", "one ", False),
        ("AssistantReply", "two", False),
        ("AssistantReply", "", True),
    ]
    ids = {e.message_id for e in body(events) if isinstance(e, rs.AssistantReply)}
    assert len(ids) == 1
    assert failed.error.message == "cut off"


async def test_text_of_internal_nodes_is_marked() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.reply("route: search")

    (reply,) = body(await events_of(single(node, internal=True)))
    assert isinstance(reply, rs.AssistantReply)
    assert reply.internal is True
    (reply,) = body(await events_of(single(node)))
    assert reply.internal is False  # type: ignore[union-attr]


async def test_a_tool_call_emits_start_updates_and_end_with_result() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        async with ctx.tool("search", {"q": "sky", "tags": ("a", "b")}) as call:
            await call.update(progress=0.5, message="halfway", data={"hits": 3})
            await anyio.sleep(0.01)
            call.result = ["blue"]

    start, update, end = body(await events_of(single(node)))
    assert isinstance(start, rs.ToolStart)
    assert isinstance(update, rs.ToolUpdate)
    assert isinstance(end, rs.ToolEnd)
    assert start.payload == {"q": "sky", "tags": ["a", "b"]}
    assert start.tool_call_id == update.tool_call_id == end.tool_call_id
    assert (update.progress, update.message, update.data) == (0.5, "halfway", {"hits": 3})
    assert end.result == ["blue"]
    assert end.error is None
    assert end.duration >= 0.01


async def test_an_exception_in_a_tool_becomes_its_error_and_is_reraised() -> None:
    caught: list[BaseException] = []

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        try:
            async with ctx.tool("div", {"a": 1}):
                raise ZeroDivisionError("division by zero")
        except ZeroDivisionError as exc:
            caught.append(exc)

    _start, end = body(await events_of(single(node)))
    assert isinstance(end, rs.ToolEnd)
    assert end.error == rs.ErrorInfo("ZeroDivisionError", "division by zero")
    assert end.result is None
    assert len(caught) == 1


async def test_a_payload_that_is_not_json_fails_at_the_call_naming_the_field() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        async with ctx.tool("bad", {"when": {1, 2}}):
            pass

    events, failed = await failure_of(single(node))
    assert isinstance(failed.__cause__, rs.EncodeError)
    assert "payload.when" in failed.error.message
    assert not [e for e in events if isinstance(e, rs.ToolStart)]


async def test_a_result_that_is_not_json_ends_the_tool_with_an_error() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        async with ctx.tool("bad") as call:
            call.result = object()

    events, failed = await failure_of(single(node))
    (end,) = [e for e in events if isinstance(e, rs.ToolEnd)]
    assert end.error is not None
    assert end.error.type == "EncodeError"
    assert "field 'result'" in failed.error.message


async def test_custom_data_must_be_json() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.custom("ok", {"n": [1, 2.5, None, True]})
        await ctx.custom("bad", {"n": float("nan")})

    events, failed = await failure_of(single(node))
    (ok,) = [e for e in events if isinstance(e, rs.Custom)]
    assert ok.data == {"n": [1, 2.5, None, True]}
    assert "field 'data.n'" in failed.error.message


async def test_tool_call_ids_are_unique_and_a_reused_one_is_refused() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        for _ in range(3):
            async with ctx.tool("t"):
                pass
        async with ctx.tool("t", tool_call_id="mine"):
            pass
        ctx.tool("t", tool_call_id="mine")

    events, failed = await failure_of(single(node))
    ids = [e.tool_call_id for e in events if isinstance(e, rs.ToolStart)]
    assert len(set(ids)) == 4
    assert "mine" in ids
    assert "'mine' is already used" in failed.error.message


@pytest.mark.parametrize("progress", [-0.1, 1.5, float("nan"), "half"])
async def test_progress_must_be_a_fraction(progress: Any) -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        async with ctx.tool("t") as call:
            await call.update(progress=progress)

    _, failed = await failure_of(single(node))
    assert "progress must be a number from 0 to 1" in failed.error.message


async def test_usage_and_phase_events() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.phase(rs.Phase.PLANNING)
        await ctx.phase("executing_tools")
        await ctx.usage("m", 10, 3)

    planning, executing, usage = body(await events_of(single(node)))
    assert isinstance(planning, rs.Workflow)
    assert planning.phase is rs.Phase.PLANNING
    assert isinstance(executing, rs.Workflow)
    assert executing.phase is rs.Phase.EXECUTING_TOOLS
    assert isinstance(usage, rs.Usage)
    assert (usage.model, usage.input_tokens, usage.output_tokens) == ("m", 10, 3)


async def test_adapter_emits_as_other_nodes() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        tools = ctx.for_node("tools")
        await tools.state_update({"n": 1, "when": object})
        asked = await ctx.for_node("ask").interrupt("Which city?", request_id="r1")
        assert asked == "r1"
        assert (await ctx.interrupt("Sure?")).startswith("ask")
        await ctx.for_node(None).custom("x")

    events = await events_of(single(node))
    update, question, awaiting, fresh, _, custom, _ = events[1:-1]
    assert isinstance(update, rs.StateUpdate)
    assert update.node == "tools"
    assert update.updates == {"n": 1, "when": repr(object)}
    assert isinstance(question, rs.AwaitClarification)
    assert (question.node, question.request_id, question.question) == ("ask", "r1", "Which city?")
    assert isinstance(awaiting, rs.Workflow)
    assert (awaiting.node, awaiting.phase) == ("ask", rs.Phase.AWAITING)
    assert isinstance(fresh, rs.AwaitClarification)
    assert fresh.node == "node"
    assert isinstance(custom, rs.Custom)
    assert custom.node is None


@pytest.mark.parametrize(
    "call",
    [
        lambda ctx: ctx.for_node(""),
        lambda ctx: ctx.state_update([1]),
        lambda ctx: ctx.interrupt({"q": 1}),
    ],
    ids=["empty node name", "updates not a mapping", "question not a str"],
)
async def test_adapter_calls_reject_bad_input(call: Callable[[rs.RunContext], Any]) -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        result = call(ctx)
        if isinstance(result, Awaitable):
            await result

    _, failed = await failure_of(single(node))
    assert failed.error.type in {"ValueError", "TypeError"}


@pytest.mark.parametrize("phase", ["completed", "failed", "canceled", "started", "dancing"])
async def test_runtime_phases_cannot_be_emitted_by_nodes(phase: str) -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.phase(phase)

    _, failed = await failure_of(single(node))
    assert failed.error.type == "ValueError"


async def test_usage_counts_must_be_non_negative_ints() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.usage("m", -1, 2)

    _, failed = await failure_of(single(node))
    assert "input_tokens" in failed.error.message


def child_graph(*, fail: bool = False, wait: anyio.Event | None = None) -> rs.CompiledGraph:
    async def work(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
        await ctx.reply(f"child got {state['topic']}")
        if wait is not None:
            wait.set()
            await anyio.sleep(60)
        if fail:
            raise RuntimeError("child broke")
        return {"answer": state["topic"].upper()}

    g = rs.StateGraph(name="child")
    g.add_node("work", work)
    g.add_edge(rs.START, "work")
    return g.compile()


async def test_call_agent_runs_a_linked_child_and_returns_its_state() -> None:
    child = child_graph()
    got: dict[str, Any] = {}

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        got.update(await ctx.call_agent(child, {"topic": "tides"}, tool_name="ask_child"))

    events = await events_of(single(node, name="parent"), thread_id="th")
    assert got == {"topic": "tides", "answer": "TIDES"}
    root = events[0].run_id
    start = next(e for e in events if isinstance(e, rs.ToolStart))
    link = next(e for e in events if isinstance(e, rs.AgentRunStarted))
    end = next(e for e in events if isinstance(e, rs.ToolEnd))
    child_events = [e for e in events if e.run_id != root]
    assert (start.tool_name, link.tool_call_id, link.child_agent) == (
        "ask_child",
        start.tool_call_id,
        "child",
    )
    assert {(e.run_id, e.parent_run_id, e.thread_id, e.agent) for e in child_events} == {
        (link.child_run_id, root, "th", "child")
    }
    assert end.error is None
    assert end.result == {"topic": "tides", "answer": "TIDES"}


async def test_a_failing_child_fails_its_tool_call_and_the_parent() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.call_agent(child_graph(fail=True), {"topic": "x"})

    events, failed = await failure_of(single(node, name="parent"))
    end = next(e for e in events if isinstance(e, rs.ToolEnd))
    assert end.error is not None
    assert end.error.message == "child broke"
    assert failed.error.message == "child broke"
    child_terminal = [
        e for e in events if isinstance(e, rs.Workflow) and e.parent_run_id and e.phase.is_terminal
    ]
    assert [e.phase for e in child_terminal] == [rs.Phase.FAILED]


async def test_canceling_the_parent_ends_the_child_first() -> None:
    waiting = anyio.Event()

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.call_agent(child_graph(wait=waiting), {"topic": "x"})

    flow = Flow()
    got: list[rs.Event] = []
    done = anyio.Event()
    with subscribing(flow):
        single(node, name="parent").run({}).subscribe(got.append, on_completed=done.set)
    with anyio.fail_after(5):
        await waiting.wait()
    flow.request_cancel()
    with anyio.fail_after(5):
        await done.wait()
    check_invariants(got)
    terminals = [
        (e.agent, e.phase) for e in got if isinstance(e, rs.Workflow) and e.phase.is_terminal
    ]
    assert terminals == [("child", rs.Phase.CANCELED), ("parent", rs.Phase.CANCELED)]
    end = next(e for e in got if isinstance(e, rs.ToolEnd))
    assert end.error is not None
    assert end.error.type == "Canceled"
    await settle()


async def test_call_agent_needs_a_compiled_graph() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.call_agent("not a graph", {})  # type: ignore[arg-type]

    _, failed = await failure_of(single(node))
    assert "CompiledGraph" in failed.error.message


async def test_generate_streams_a_model_turn() -> None:
    model = rs.ScriptedModel([rs.Turn(text="the answer is 42", thought="think first")])
    answer: list[rs.Message] = []

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        answer.append(await ctx.generate(model, [rs.Message("user", "question?")]))

    events = body(await events_of(single(node)))
    text = "".join(e.text for e in events if isinstance(e, rs.AssistantReply))
    thought = "".join(e.text for e in events if isinstance(e, rs.PlannerThought))
    assert (text, thought) == ("the answer is 42", "think first")
    assert answer[0].content == "the answer is 42"
    assert [type(e) for e in events][-1] is rs.Usage
