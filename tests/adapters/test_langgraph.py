"""`from_langgraph` with real LangGraph graphs on a natively streaming fake chat model."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import StructuredTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt

import runstream as rs
from _support.fake_chat import USAGE, StreamingFake
from _support.invariants import check_invariants, failure_of, settle, terminal
from _support.watch import Stuck
from runstream.adapters.langgraph import as_graph, from_langgraph

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

QUESTION = {"messages": [{"role": "user", "content": "Weather in Oslo and Atlantis?"}]}


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    if city == "Atlantis":
        raise ValueError("no such city")
    return f"sunny in {city}"


def script() -> StreamingFake:
    """Reasoning, text and two tool calls (one fails); then the answer."""
    calls = [
        {"name": "weather", "args": {"city": "Oslo"}, "id": "c1"},
        {"name": "weather", "args": {"city": "Atlantis"}, "id": "c2"},
    ]
    first = AIMessage(
        content="Let me look.",
        additional_kwargs={"reasoning": "Two cities to check."},
        tool_calls=calls,
    )
    return StreamingFake(messages=iter([first, AIMessage(content="Sunny in Oslo only.")]))


def react(model: StreamingFake, *, name: str = "forecaster", checkpointer: Any = None) -> Any:
    async def agent(state: MessagesState) -> dict[str, Any]:
        get_stream_writer()({"step": "model"})
        return {"messages": [await model.ainvoke(state["messages"])]}

    def route(state: MessagesState) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode([weather], handle_tool_errors=True))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", route, ["tools", END])
    g.add_edge("tools", "agent")
    return g.compile(name=name, checkpointer=checkpointer)


async def events_of(stream: rs.RunStream) -> list[rs.Event]:
    events = [e async for e in stream]
    check_invariants(events)
    return events


def texts(events: list[rs.Event], cls: type[rs.AssistantReply | rs.PlannerThought]) -> list[str]:
    """Each streamed message's text, checked to end with one `done=True` chunk."""
    by_id: dict[str, list[Any]] = defaultdict(list)
    for e in events:
        if isinstance(e, cls):
            by_id[e.message_id].append(e)
    for chunks in by_id.values():
        assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]
    return ["".join(c.text for c in chunks) for chunks in by_id.values()]


async def test_a_react_graph_becomes_runstream_events() -> None:
    events = await events_of(from_langgraph(react(script()), QUESTION))
    assert events[0].agent == "forecaster"
    terminal(events, rs.Phase.COMPLETED)
    assert texts(events, rs.PlannerThought) == ["Two cities to check."]
    assert texts(events, rs.AssistantReply) == ["Let me look.", "Sunny in Oslo only."]
    assert {e.node for e in events if isinstance(e, rs.AssistantReply)} == {"agent"}
    starts = [e for e in events if isinstance(e, rs.ToolStart)]
    assert [(s.tool_call_id, s.tool_name, s.payload) for s in starts] == [
        ("c1", "weather", {"city": "Oslo"}),
        ("c2", "weather", {"city": "Atlantis"}),
    ]
    ends = {e.tool_call_id: e for e in events if isinstance(e, rs.ToolEnd)}
    assert ends["c1"].result == "sunny in Oslo"
    assert ends["c1"].error is None
    failed = ends["c2"].error
    assert failed is not None
    assert failed.type == "ToolError"
    assert "no such city" in failed.message
    usage = [e for e in events if isinstance(e, rs.Usage)]
    assert [(u.model, u.input_tokens, u.output_tokens) for u in usage] == [
        ("fake-1", USAGE["input_tokens"], USAGE["output_tokens"])
    ] * 2
    custom = [e for e in events if isinstance(e, rs.Custom)]
    wrote = ("langgraph", "agent", {"step": "model"})
    assert [(c.name, c.node, c.data) for c in custom] == [wrote] * 2
    updates = [e for e in events if isinstance(e, rs.StateUpdate) and e.node != "langgraph"]
    assert [u.node for u in updates] == ["agent", "tools", "agent"]
    asked = updates[0].updates["messages"][0]
    assert asked["type"] == "ai"
    assert [c["id"] for c in asked["tool_calls"]] == ["c1", "c2"]
    # The model's message ends (done, usage, its tool calls) before the tools run.
    position = {id(e): i for i, e in enumerate(events)}
    first_done = next(e for e in events if isinstance(e, rs.AssistantReply) and e.done)
    assert position[id(first_done)] < position[id(starts[0])] < position[id(updates[1])]


async def test_a_message_a_node_returns_whole_is_one_reply() -> None:
    def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content="Forty-two.", id="m1")]}

    g = StateGraph(MessagesState)
    g.add_node("answer", answer)
    g.add_edge(START, "answer")
    events = await events_of(from_langgraph(g.compile(), QUESTION, name="oracle"))
    [reply] = [e for e in events if isinstance(e, rs.AssistantReply)]
    assert (reply.text, reply.done, reply.node) == ("Forty-two.", True, "answer")
    assert reply.agent == "oracle"


async def test_parallel_nodes_stream_their_own_messages() -> None:
    def node(text: str) -> Any:
        model = StreamingFake(messages=iter([AIMessage(content=text)]))

        async def call(state: MessagesState) -> dict[str, Any]:
            return {"messages": [await model.ainvoke(state["messages"])]}

        return call

    g = StateGraph(MessagesState)
    g.add_node("north", node("Cold up north."))
    g.add_node("south", node("Warm down south."))
    g.add_edge(START, "north")
    g.add_edge(START, "south")
    events = await events_of(from_langgraph(g.compile(), QUESTION))
    replies = [e for e in events if isinstance(e, rs.AssistantReply)]
    by_node = {
        n: texts([e for e in replies if e.node == n], rs.AssistantReply) for n in ("north", "south")
    }
    assert by_node == {"north": ["Cold up north."], "south": ["Warm down south."]}


def with_subgraph(inner: Any) -> Any:
    def summarize(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content="Summary: sunny.")]}

    g = StateGraph(MessagesState)
    g.add_node("research", inner)
    g.add_node("summarize", summarize)
    g.add_edge(START, "research")
    g.add_edge("research", "summarize")
    return g.compile(name="planner")


async def test_a_subgraph_is_a_child_run_linked_to_its_tool_call() -> None:
    events = await events_of(from_langgraph(with_subgraph(react(script())), QUESTION))
    root = events[0].run_id
    [link] = [e for e in events if isinstance(e, rs.AgentRunStarted)]
    assert (link.run_id, link.tool_name, link.child_agent) == (root, "research", "research")
    child = [e for e in events if e.run_id == link.child_run_id]
    assert child[0].parent_run_id == root
    terminal(child, rs.Phase.COMPLETED)
    assert texts(child, rs.AssistantReply) == ["Let me look.", "Sunny in Oslo only."]
    assert {e.tool_call_id for e in child if isinstance(e, rs.ToolEnd)} == {"c1", "c2"}
    [call] = [e for e in events if isinstance(e, rs.ToolEnd) and e.run_id == root]
    assert call.tool_call_id == link.tool_call_id
    assert call.result["messages"][-1]["content"] == "Sunny in Oslo only."
    root_replies = texts([e for e in events if e.run_id == root], rs.AssistantReply)
    assert root_replies == ["Summary: sunny."]


async def test_nested_subgraphs_are_nested_child_runs() -> None:
    middle = StateGraph(MessagesState)
    middle.add_node("inner", react(script()))
    middle.add_edge(START, "inner")
    events = await events_of(from_langgraph(with_subgraph(middle.compile()), QUESTION))
    links = [e for e in events if isinstance(e, rs.AgentRunStarted)]
    assert [link.tool_name for link in links] == ["research", "inner"]
    assert links[1].run_id == links[0].child_run_id
    deepest = [e for e in events if e.run_id == links[1].child_run_id]
    assert texts(deepest, rs.AssistantReply) == ["Let me look.", "Sunny in Oslo only."]


def asking(checkpointer: Any) -> Any:
    def ask(state: MessagesState) -> dict[str, Any]:
        city = interrupt("Which city?")
        return {"messages": [AIMessage(content=f"Sunny in {city}.")]}

    g = StateGraph(MessagesState)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    return g.compile(name="asker", checkpointer=checkpointer)


async def test_an_interrupt_awaits_and_a_resume_answers_it() -> None:
    graph = asking(InMemorySaver())
    config = {"configurable": {"thread_id": "t1"}}
    events = await events_of(from_langgraph(graph, QUESTION, config))
    [question] = [e for e in events if isinstance(e, rs.AwaitClarification)]
    assert (question.node, question.question) == ("ask", "Which city?")
    [pending] = graph.get_state(config).interrupts
    assert question.request_id == pending.id
    awaiting = events[events.index(question) + 1]
    assert isinstance(awaiting, rs.Workflow)
    assert awaiting.phase is rs.Phase.AWAITING
    terminal(events, rs.Phase.COMPLETED)
    assert not [e for e in events if isinstance(e, rs.AssistantReply)]

    resumed = await events_of(from_langgraph(graph, Command(resume="Oslo"), config))
    assert texts(resumed, rs.AssistantReply) == ["Sunny in Oslo."]


async def test_a_runs_thread_id_is_the_graphs_thread() -> None:
    app = as_graph(asking(InMemorySaver()))
    first = await events_of(app.run(QUESTION, thread_id="t7"))
    assert any(isinstance(e, rs.AwaitClarification) for e in first)
    resumed = await events_of(app.run(Command(resume="Bergen"), thread_id="t7"))
    assert texts(resumed, rs.AssistantReply) == ["Sunny in Bergen."]


def broken(where: str) -> Any:
    def fail(state: MessagesState) -> dict[str, Any]:
        raise RuntimeError(f"{where} broke")

    inner = StateGraph(MessagesState)
    inner.add_node("fail", fail)
    inner.add_edge(START, "fail")
    if where == "node":
        return inner.compile(name="broken")
    return with_subgraph(inner.compile())


async def test_an_exception_fails_the_run_with_run_failed() -> None:
    events, failed = await failure_of(from_langgraph(broken("node"), QUESTION))
    assert terminal(events, rs.Phase.FAILED).error == failed.error
    assert (failed.error.type, failed.error.message) == ("RuntimeError", "node broke")


async def test_a_failing_subgraph_fails_its_child_run_its_call_and_the_run() -> None:
    events, failed = await failure_of(from_langgraph(broken("subgraph"), QUESTION))
    [link] = [e for e in events if isinstance(e, rs.AgentRunStarted)]
    child = [e for e in events if e.run_id == link.child_run_id]
    assert terminal(child, rs.Phase.FAILED).error.type == "RuntimeError"
    [call] = [e for e in events if isinstance(e, rs.ToolEnd)]
    assert call.error is not None
    assert call.error.message == "subgraph broke"
    assert failed.error.message == "subgraph broke"


async def test_disposing_cancels_the_graph_run_with_no_task_left() -> None:
    stuck = Stuck()
    slow = StructuredTool.from_function(coroutine=stuck.tool)
    call = {"name": "slow", "args": {"city": "Oslo"}, "id": "s1"}
    model = StreamingFake(messages=iter([AIMessage(content="Waiting.", tool_calls=[call])]))

    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    inner = StateGraph(MessagesState)
    inner.add_node("agent", agent)
    inner.add_node("tools", ToolNode([slow]))
    inner.add_edge(START, "agent")
    inner.add_edge("agent", "tools")
    stream = from_langgraph(with_subgraph(inner.compile()), QUESTION)
    events = await stuck.dispose_when_entered(stream)
    check_invariants(events)
    terminal(events, rs.Phase.CANCELED)
    [link] = [e for e in events if isinstance(e, rs.AgentRunStarted)]
    terminal([e for e in events if e.run_id == link.child_run_id], rs.Phase.CANCELED)
    ends = [e for e in events if isinstance(e, rs.ToolEnd)]
    assert {e.tool_call_id for e in ends} == {"s1", link.tool_call_id}
    assert all(e.error is not None and e.error.type == "Canceled" for e in ends)
    await settle()


async def test_operators_and_sinks_work_on_it_unchanged() -> None:
    replies = rs.MemorySink[rs.AssistantReply]()
    stream = from_langgraph(react(script()), QUESTION).pipe(rs.ops.of_type(rs.AssistantReply))
    await rs.drain(stream, replies)
    assert "".join(e.text for e in replies.items) == "Let me look.Sunny in Oslo only."


async def test_a_graph_that_is_not_langgraph_is_refused() -> None:
    with pytest.raises(TypeError, match="compiled LangGraph graph"):
        from_langgraph(object(), {})


async def test_as_a_graph_it_is_served_by_name_over_http() -> None:
    from _support.server import live, read_sse
    from runstream.server import create_app

    graphs = {"forecaster": as_graph(react(script()))}
    async with live(create_app(graphs)) as client:
        started = await client.post("/runs", json={"graph": "forecaster", "input": QUESTION})
        assert started.status_code == 201
        _, events = await read_sse(client, started.json()["events_url"])
    check_invariants(events)
    assert texts(events, rs.AssistantReply) == ["Let me look.", "Sunny in Oslo only."]


async def test_in_a_runtime_with_a_global_sink() -> None:
    seen = rs.MemorySink[rs.Event]()
    async with rs.Runtime({"forecaster": as_graph(react(script()))}, sinks=[seen]) as rt:
        run_id = await rt.start("forecaster", QUESTION)
        record = await rt.wait(run_id)
    assert record.status == "completed"
    check_invariants(seen.items)
    assert any(isinstance(e, rs.ToolEnd) and e.tool_call_id == "c1" for e in seen.items)
