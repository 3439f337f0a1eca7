from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import pytest

import runstream as rs
from _support.invariants import settle
from runstream import ArgumentError, SchemaError
from runstream.agents import MaxTurnsExceeded, Tool, agent_tool, create_agent, tool
from runstream.events import (
    AgentRunStarted,
    AssistantReply,
    Event,
    Phase,
    ToolCall,
    ToolEnd,
    ToolStart,
    ToolUpdate,
    Workflow,
)
from runstream.graph import (
    START,
    CompiledGraph,
    RunContext,
    RunFailed,
    StateGraph,
    ToolCallHandle,
)
from runstream.models import Message, ModelChunk, ScriptedModel, ToolSpec, Turn


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def collect(app: CompiledGraph, input: object) -> list[Event]:
    return [event async for event in app.run(input)]


async def collect_failed(app: CompiledGraph, input: object) -> tuple[list[Event], RunFailed]:
    events: list[Event] = []

    async def consume() -> None:
        async for event in app.run(input):
            events.append(event)

    with pytest.raises(RunFailed) as info:
        await consume()
    return events, info.value


def phases(events: list[Event]) -> list[str]:
    return [e.phase.value for e in events if isinstance(e, Workflow)]


def tool_messages(state: dict[str, Any]) -> list[Message]:
    return [m for m in state["messages"] if m.role == "tool"]


@tool
async def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first addend.
        b: the second addend.
    """
    await anyio.sleep(0.01)
    return a + b


# --- @tool --------------------------------------------------------------------------


def test_tool_takes_name_description_and_schema_from_the_function() -> None:
    assert isinstance(add, Tool)
    assert add.name == "add"
    assert add.description == "Add two integers."
    assert add.spec == ToolSpec(
        "add",
        "Add two integers.",
        {
            "type": "object",
            "properties": {
                "a": {"type": "integer", "description": "the first addend."},
                "b": {"type": "integer", "description": "the second addend."},
            },
            "required": ["a", "b"],
            "additionalProperties": False,
        },
    )


def test_tool_with_arguments_overrides_name_and_description() -> None:
    @tool(name="calc", description="Evaluate.")
    def calculate(expression: str, precision: int = 2) -> str:
        """Not this."""
        return expression

    assert (calculate.name, calculate.description) == ("calc", "Evaluate.")
    assert calculate.spec.parameters["required"] == ["expression"]
    assert calculate("1+1") == "1+1"  # a Tool still calls its function


def test_tool_leaves_injected_parameters_out_of_the_schema() -> None:
    @tool
    async def search(query: str, ctx: RunContext, call: ToolCallHandle) -> list[str]:
        """Search."""
        return []

    properties = search.spec.parameters["properties"]
    assert isinstance(properties, dict)
    assert list(properties) == ["query"]


def test_tool_with_a_bad_annotation_fails_at_decoration_naming_the_parameter() -> None:
    with pytest.raises(SchemaError, match="'when'"):

        @tool
        def schedule(when: threading.Thread) -> None:
            """Schedule."""

    with pytest.raises(SchemaError, match="'note'"):

        @tool
        def annotate(note) -> None:  # type: ignore[no-untyped-def]
            """No annotation."""


def test_tool_validates_arguments_with_readable_errors() -> None:
    assert add.validate({"a": 1, "b": 2}) == {"a": 1, "b": 2}
    with pytest.raises(ArgumentError, match="argument 'a': expected integer"):
        add.validate({"a": "one", "b": 2})
    with pytest.raises(ArgumentError, match="missing required argument 'b'"):
        add.validate({"a": 1})


# --- create_agent: the loop -------------------------------------------------------


def make_calc_app() -> CompiledGraph:
    """An agent whose first tool can only finish after the second one has."""
    add_done = anyio.Event()

    @tool
    async def mul(a: int, b: int) -> int:
        """Multiply two integers, once the sum is known."""
        with anyio.fail_after(5):  # if the calls ran one after the other, this would hang
            await add_done.wait()
        return a * b

    @tool(name="add")
    async def add_then_signal(a: int, b: int) -> int:
        """Add two integers."""
        await anyio.sleep(0.01)
        add_done.set()
        return a + b

    model = ScriptedModel(
        [
            Turn(
                thought="Two sums.",
                tool_calls=[("mul", {"a": 2, "b": 3}), ("add", {"a": 2, "b": 3})],
            ),
            "Six and five.",
        ]
    )
    return create_agent(model, tools=[mul, add_then_signal], name="calc")


@pytest.mark.anyio
async def test_parallel_tool_calls_stream_live_and_the_answer_comes_last() -> None:
    events = await collect(make_calc_app(), "What are 2*3 and 2+3?")

    tool_events = [e for e in events if isinstance(e, ToolStart | ToolEnd)]
    assert [type(e).__name__ for e in tool_events] == [
        "ToolStart",
        "ToolStart",
        "ToolEnd",
        "ToolEnd",
    ]
    # add ends first, although it was called second: its end is not held back.
    assert [e.tool_name for e in tool_events if isinstance(e, ToolEnd)] == ["add", "mul"]
    assert [e.result for e in tool_events if isinstance(e, ToolEnd)] == [5, 6]
    assert phases(events) == ["started", "planning", "executing_tools", "synthesizing", "completed"]
    assert {e.agent for e in events} == {"calc"}
    assert "".join(e.text for e in events if isinstance(e, AssistantReply)) == "Six and five."

    state = await make_calc_app().invoke("What are 2*3 and 2+3?")
    last = state["messages"][-1]
    assert (last.role, last.content, last.tool_calls) == ("assistant", "Six and five.", ())
    # Tool messages come in the order of the calls, each answering its call.
    call_ids = [c.tool_call_id for c in state["messages"][1].tool_calls]
    results = tool_messages(state)
    assert [m.tool_call_id for m in results] == call_ids
    assert [m.content for m in results] == ["6", "5"]


@pytest.mark.anyio
async def test_instructions_and_tools_reach_the_model() -> None:
    seen: list[tuple[list[Message], list[ToolSpec]]] = []

    class Recorder:
        name = "recorder"

        async def stream(
            self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = ()
        ) -> AsyncIterator[ModelChunk]:
            seen.append((list(messages), list(tools)))
            yield ModelChunk(text="ok")

    app = create_agent(Recorder(), tools=[add], instructions="Be brief.")
    state = await app.invoke("hi")
    messages, tools = seen[0]
    assert messages == [Message("system", "Be brief."), Message("user", "hi")]
    assert tools == [add.spec]
    # The system prompt is sent, not stored in the conversation.
    assert state["messages"] == [Message("user", "hi"), Message("assistant", "ok")]


@pytest.mark.anyio
async def test_input_may_be_a_conversation_of_dicts_or_messages() -> None:
    model = ScriptedModel(["first", "second"])
    app = create_agent(model)
    history = {
        "messages": [
            {"role": "user", "content": "hello"},
            Message("assistant", "first"),
            {"role": "user", "content": "again"},
        ]
    }
    state = await app.invoke(history)
    assert [m.content for m in state["messages"]] == ["hello", "first", "again", "second"]
    assert all(isinstance(m, Message) for m in state["messages"])


@pytest.mark.parametrize("bad", [42, {"question": "x"}, {"messages": "hi"}])
def test_bad_input_is_rejected(bad: object) -> None:
    app = create_agent(ScriptedModel(["x"]))
    with pytest.raises(TypeError, match="input"):
        app.run(bad)


@pytest.mark.anyio
async def test_sync_tools_run_in_a_worker_thread() -> None:
    threads: list[int] = []

    @tool
    def where() -> str:
        """Say where it runs."""
        threads.append(threading.get_ident())
        return "here"

    app = create_agent(ScriptedModel([Turn(tool_calls=[("where", {})]), "done"]), tools=[where])
    state = await app.invoke("go")
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()
    assert tool_messages(state)[0].content == "here"


@pytest.mark.anyio
async def test_tools_get_the_context_and_the_call_handle() -> None:
    @tool
    async def fetch(url: str, ctx: RunContext, call: ToolCallHandle) -> dict[str, str]:
        """Fetch a page."""
        await call.update(progress=0.5, message="halfway")
        return {"url": url, "node": str(ctx.node), "call": call.tool_call_id}

    model = ScriptedModel([Turn(tool_calls=[ToolCall("c1", "fetch", {"url": "u"})]), "ok"])
    events = await collect(create_agent(model, tools=[fetch]), "go")
    update = next(e for e in events if isinstance(e, ToolUpdate))
    assert (update.tool_call_id, update.progress, update.message) == ("c1", 0.5, "halfway")
    end = next(e for e in events if isinstance(e, ToolEnd))
    assert end.result == {"url": "u", "node": "tools", "call": "c1"}


@pytest.mark.anyio
async def test_plain_functions_are_wrapped_as_tools() -> None:
    def double(x: int) -> int:
        """Double it."""
        return 2 * x

    model = ScriptedModel([Turn(tool_calls=[("double", {"x": 4})]), "8"])
    state = await create_agent(model, tools=[double]).invoke("go")
    assert tool_messages(state)[0].content == "8"


@pytest.mark.anyio
async def test_one_agent_serves_concurrent_runs() -> None:
    app = create_agent(ScriptedModel([Turn(tool_calls=[("add", {"a": 1, "b": 1})]), "2"]), [add])
    runs: list[list[Event]] = []

    async def one() -> None:
        runs.append(await collect(app, "1+1?"))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    assert [phases(events)[-1] for events in runs] == ["completed"] * 3
    ids = {e.tool_call_id for events in runs for e in events if isinstance(e, ToolStart)}
    assert len(ids) == 3


# --- failures the model sees --------------------------------------------------------


async def assert_tool_error_reaches_model(
    turn: Turn, tools: list[Tool], error_type: str, message: str
) -> None:
    app = create_agent(ScriptedModel([turn, "Sorry."]), tools=tools)
    events = await collect(app, "go")
    ends = [e for e in events if isinstance(e, ToolEnd)]
    assert len(ends) == 1
    assert ends[0].error is not None
    assert ends[0].error.type == error_type
    assert message in ends[0].error.message
    assert phases(events)[-1] == "completed"

    state = await app.invoke("go")
    content = tool_messages(state)[0].content
    assert content.startswith(f"Error: {error_type}: ")
    assert message in content
    assert state["messages"][-1] == Message("assistant", "Sorry.")
    await settle()


@pytest.mark.anyio
async def test_bad_arguments_end_the_call_with_an_error_the_model_sees() -> None:
    await assert_tool_error_reaches_model(
        Turn(tool_calls=[("add", {"a": "two", "b": 3})]),
        [add],
        "ArgumentError",
        "argument 'a': expected integer, got string 'two'",
    )


@pytest.mark.anyio
async def test_a_raising_tool_ends_the_call_with_an_error_the_model_sees() -> None:
    @tool
    async def explode(reason: str) -> None:
        """Fail."""
        raise ValueError(f"boom: {reason}")

    await assert_tool_error_reaches_model(
        Turn(tool_calls=[("explode", {"reason": "test"})]), [explode], "ValueError", "boom: test"
    )


@pytest.mark.anyio
async def test_an_unknown_tool_ends_the_call_with_an_error_the_model_sees() -> None:
    await assert_tool_error_reaches_model(
        Turn(tool_calls=[("divide", {"a": 1})]), [add], "UnknownToolError", "'divide'"
    )


@pytest.mark.anyio
async def test_a_failing_call_does_not_disturb_its_siblings() -> None:
    model = ScriptedModel(
        [Turn(tool_calls=[("add", {"a": 1, "b": 2}), ("nope", {}), ("add", {"a": 3, "b": 4})]), "!"]
    )
    state = await create_agent(model, tools=[add]).invoke("go")
    contents = [m.content for m in tool_messages(state)]
    assert contents[0] == "3"
    assert contents[1].startswith("Error: UnknownToolError")
    assert contents[2] == "7"


@pytest.mark.anyio
async def test_passing_max_turns_fails_the_run_naming_the_limit() -> None:
    loop = Turn(tool_calls=[("add", {"a": 1, "b": 1})])
    app = create_agent(ScriptedModel([loop, loop, loop, "never"]), tools=[add], max_turns=2)
    events, failed = await collect_failed(app, "go")
    terminal = events[-1]
    assert isinstance(terminal, Workflow)
    assert terminal.phase is Phase.FAILED
    assert terminal.error is not None
    assert terminal.error.type == "MaxTurnsExceeded"
    assert "max_turns=2" in terminal.error.message
    assert isinstance(failed.__cause__, MaxTurnsExceeded)
    assert isinstance(failed.__cause__, RuntimeError)
    # Two full turns ran (their tools too) before the third was refused.
    assert len([e for e in events if isinstance(e, ToolEnd)]) == 2
    await settle()


@pytest.mark.anyio
async def test_max_turns_beyond_the_default_step_limit_still_works() -> None:
    turns: list[Turn | str] = [Turn(tool_calls=[("add", {"a": 1, "b": 1})])] * 30
    app = create_agent(ScriptedModel([*turns, "done"]), tools=[add], max_turns=31)
    state = await app.invoke("go")
    assert state["messages"][-1].content == "done"


@pytest.mark.anyio
async def test_a_failing_model_fails_the_run() -> None:
    app = create_agent(ScriptedModel([]))
    events, failed = await collect_failed(app, "go")
    assert "ran out of script" in str(failed)
    assert phases(events)[-1] == "failed"
    await settle()


def test_create_agent_checks_its_arguments() -> None:
    model = ScriptedModel(["x"])
    with pytest.raises(TypeError, match="ChatModel"):
        create_agent("gpt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_turns"):
        create_agent(model, max_turns=0)
    with pytest.raises(ValueError, match="two tools are named 'add'"):
        create_agent(model, tools=[add, add])
    with pytest.raises(TypeError, match="tools"):
        create_agent(model, tools=["add"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="agent_tool"):
        create_agent(model, tools=[create_agent(model)])  # type: ignore[list-item]


# --- agent_tool ---------------------------------------------------------------------


def make_lead(child_reply: str = "Paris.") -> tuple[CompiledGraph, CompiledGraph]:
    child = create_agent(
        ScriptedModel([Turn(tool_calls=[("add", {"a": 1, "b": 1})]), child_reply]),
        tools=[add],
        name="researcher",
    )
    research = agent_tool(child, "research", "Research a question.")
    lead = create_agent(
        ScriptedModel(
            [Turn(tool_calls=[("research", {"input": "Capital of France?"})]), "It is Paris."]
        ),
        tools=[research],
        name="lead",
    )
    return lead, child


def test_agent_tool_schema() -> None:
    child = create_agent(ScriptedModel(["x"]), name="researcher")
    t = agent_tool(child, "research", "Research a question.")
    assert (t.name, t.description, t.app) == ("research", "Research a question.", child)
    params = t.spec.parameters
    assert params["type"] == "object"
    assert params["required"] == ["input"]
    assert params["additionalProperties"] is False
    properties = params["properties"]
    assert isinstance(properties, dict)
    assert properties["input"]["type"] == "string"
    assert "description" in properties["input"]


@pytest.mark.anyio
async def test_agent_tool_streams_the_child_run_inside_the_parent_call() -> None:
    lead, _ = make_lead()
    events = await collect(lead, "What is the capital of France?")
    root = events[0].run_id

    start = next(
        i for i, e in enumerate(events) if isinstance(e, ToolStart) and e.tool_name == "research"
    )
    end = next(
        i for i, e in enumerate(events) if isinstance(e, ToolEnd) and e.tool_name == "research"
    )
    parent_start, parent_end = events[start], events[end]
    assert isinstance(parent_start, ToolStart)
    assert isinstance(parent_end, ToolEnd)
    assert parent_start.run_id == parent_end.run_id == root
    # What the model sent, and only the child's answer (not its transcript).
    assert parent_start.payload == {"input": "Capital of France?"}
    assert parent_end.result == "Paris."
    assert parent_end.error is None
    assert len([e for e in events if isinstance(e, ToolStart) and e.run_id == root]) == 1

    linked = events[start + 1]
    assert isinstance(linked, AgentRunStarted)
    assert linked.tool_call_id == parent_start.tool_call_id
    assert linked.child_agent == "researcher"

    child_events = [e for e in events if e.run_id == linked.child_run_id]
    assert child_events, "the child run's events are in the parent's stream"
    assert all(start + 1 < events.index(e) < end for e in child_events)
    assert all(e.parent_run_id == root and e.agent == "researcher" for e in child_events)
    assert phases(child_events) == [
        "started",
        "planning",
        "executing_tools",
        "synthesizing",
        "completed",
    ]
    assert [e.seq for e in events] == list(range(len(events)))


@pytest.mark.anyio
async def test_agent_tool_result_is_the_childs_last_message() -> None:
    lead, _ = make_lead("The capital is Paris.")
    state = await lead.invoke("What is the capital of France?")
    assert tool_messages(state)[0].content == "The capital is Paris."
    assert state["messages"][-1].content == "It is Paris."


@pytest.mark.anyio
async def test_agent_tool_called_directly_shows_its_arguments_and_answer() -> None:
    # A Tool invoked by hand inside a node: the same ToolStart/ToolEnd shapes.
    child = create_agent(ScriptedModel(["Rome."]), name="researcher")
    research = agent_tool(child, "research", "Research a question.")

    async def node(state: dict[str, Any], ctx: RunContext) -> None:
        async with ctx.tool("outer", {}) as handle:
            handle.result = await research.invoke({"input": "Capital of Italy?"}, ctx, handle)

    g = StateGraph(name="manual")
    g.add_node("n", node)
    g.add_edge(START, "n")
    events = await collect(g.compile(), {})
    [start] = [e for e in events if isinstance(e, ToolStart) and e.tool_name == "research"]
    [end] = [e for e in events if isinstance(e, ToolEnd) and e.tool_name == "research"]
    assert start.payload == {"input": "Capital of Italy?"}
    assert end.result == "Rome."


@pytest.mark.anyio
async def test_agent_tool_with_bad_arguments_ends_in_an_error_without_a_child_run() -> None:
    child = create_agent(ScriptedModel(["x"]), name="researcher")
    lead = create_agent(
        ScriptedModel([Turn(tool_calls=[("research", {"query": "x"})]), "Sorry."]),
        tools=[agent_tool(child, "research", "Research.")],
    )
    events = await collect(lead, "go")
    assert not any(isinstance(e, AgentRunStarted) for e in events)
    end = next(e for e in events if isinstance(e, ToolEnd))
    assert end.error is not None
    assert end.error.type == "ArgumentError"
    assert phases(events)[-1] == "completed"


@pytest.mark.anyio
async def test_a_failing_child_run_is_an_error_the_parent_model_sees() -> None:
    child = create_agent(ScriptedModel([]), name="researcher")  # runs out at once
    lead = create_agent(
        ScriptedModel([Turn(tool_calls=[("research", {"input": "x"})]), "Sorry."]),
        tools=[agent_tool(child, "research", "Research.")],
    )
    events = await collect(lead, "go")
    child_terminal = [e for e in events if isinstance(e, Workflow) and e.parent_run_id is not None][
        -1
    ]
    assert child_terminal.phase is Phase.FAILED
    end = next(e for e in events if isinstance(e, ToolEnd))
    assert end.error is not None
    assert phases(events)[-1] == "completed"
    state = await lead.invoke("go")
    assert "ran out of script" in tool_messages(state)[0].content


@pytest.mark.anyio
async def test_calling_an_agent_tool_directly_runs_the_agent() -> None:
    _, child = make_lead("Paris.")
    research = agent_tool(child, "research", "Research.")
    assert await research(input="Capital of France?") == "Paris."


@pytest.mark.anyio
async def test_an_agent_with_a_checkpointer_remembers_its_thread() -> None:
    model = rs.ScriptedModel(["Hello Ann.", "You are Ann."])
    app = rs.create_agent(model, checkpointer=rs.MemoryCheckpointer())
    await app.invoke("I am Ann.", thread_id="chat")
    second = await app.invoke("Who am I?", thread_id="chat")
    assert [(m.role, m.content) for m in second["messages"]] == [
        ("user", "I am Ann."),
        ("assistant", "Hello Ann."),
        ("user", "Who am I?"),
        ("assistant", "You are Ann."),
    ]
    state = await app.get_state("chat")
    assert state is not None
    assert state["messages"] == second["messages"]  # decoded back to Message objects
