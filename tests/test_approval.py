"""`@rs.tool(approval=True)` in `create_agent`: the user approves or denies each call."""

from __future__ import annotations

from typing import Any
from unittest.mock import ANY

import pytest

import runstream as rs
from _support.invariants import check_invariants, terminal

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

sent: list[str] = []


@rs.tool(approval=True)
def send_mail(to: str) -> str:
    """Send the mail."""
    sent.append(to)
    return f"sent to {to}"


def mailer() -> rs.CompiledGraph:
    model = rs.ScriptedModel(
        [rs.Turn(tool_calls=[("send_mail", {"to": "ann@example.org"})]), "Done."]
    )
    return rs.create_agent(model, tools=[send_mail], name="mailer")


async def run_answering(answer: Any) -> list[rs.Event]:
    inbox = rs.Inbox()
    events: list[rs.Event] = []
    async for event in mailer().run("Mail Ann", inbox=inbox):
        events.append(event)
        if isinstance(event, rs.AwaitClarification):
            inbox.answer(event.request_id, answer)
    check_invariants(events)
    terminal(events, rs.Phase.COMPLETED)
    return events


@pytest.mark.parametrize("answer", [True, {"approved": True}])
async def test_an_approved_call_runs(answer: Any) -> None:
    sent.clear()
    events = await run_answering(answer)
    [question] = [e for e in events if isinstance(e, rs.AwaitClarification)]
    assert question.tool_call is not None
    assert question.tool_call.tool_name == "send_mail"
    assert question.tool_call.payload == {"to": "ann@example.org"}
    assert question.question == 'Allow send_mail({"to": "ann@example.org"})?'
    [end] = [e for e in events if isinstance(e, rs.ToolEnd)]
    assert (end.tool_call_id, end.result, end.error) == (
        question.tool_call.tool_call_id,
        "sent to ann@example.org",
        None,
    )
    assert sent == ["ann@example.org"]
    # The question comes before the call starts.
    start = next(e for e in events if isinstance(e, rs.ToolStart))
    assert events.index(question) < events.index(start)


@pytest.mark.parametrize(
    ("answer", "reads"),
    [
        (False, "the user denied this tool call"),
        ({"approved": False, "reason": "not today"}, "the user denied this tool call: not today"),
        ("maybe", "the user denied this tool call"),
    ],
)
async def test_a_denied_call_is_an_error_the_model_reads(answer: Any, reads: str) -> None:
    sent.clear()
    model_saw: list[list[rs.Message]] = []

    class Recording(rs.ScriptedModel):
        def stream(self, messages: Any, *, tools: Any = ()) -> Any:
            model_saw.append(list(messages))
            return super().stream(messages, tools=tools)

    model = Recording([rs.Turn(tool_calls=[("send_mail", {"to": "ann@example.org"})]), "OK."])
    app = rs.create_agent(model, tools=[send_mail], name="mailer")
    inbox = rs.Inbox()
    events: list[rs.Event] = []
    async for event in app.run("Mail Ann", inbox=inbox):
        events.append(event)
        if isinstance(event, rs.AwaitClarification):
            inbox.answer(event.request_id, answer)
    check_invariants(events)
    [end] = [e for e in events if isinstance(e, rs.ToolEnd)]
    assert end.error is not None
    assert (end.error.type, end.error.message) == ("ToolDenied", reads)
    assert sent == []
    tool_message = model_saw[-1][-1]
    assert tool_message.role == "tool"
    assert reads in tool_message.content


def locator(store: rs.Checkpointer | None = None) -> rs.CompiledGraph:
    model = rs.ScriptedModel(
        [
            rs.Turn(tool_calls=[("get_location", {}), ("add", {"a": 1, "b": 2})]),
            "You are in Oslo.",
        ]
    )

    @rs.tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    where = rs.ToolSpec("get_location", "Where the user is.", {"type": "object"})
    return rs.create_agent(
        model, tools=[add], name="locator", external_tools=[where], checkpointer=store
    )


async def test_an_external_tool_goes_to_the_client_and_the_model_reads_its_result() -> None:
    inbox = rs.Inbox()
    events: list[rs.Event] = []
    async for event in locator().run("Where am I?", inbox=inbox):
        events.append(event)
        if isinstance(event, rs.AwaitExternalTools):
            assert [c.tool_name for c in event.calls] == ["get_location"]
            inbox.answer(event.request_id, [{"city": "Oslo"}])
    check_invariants(events)
    terminal(events, rs.Phase.COMPLETED)
    final = [e for e in events if isinstance(e, rs.StateUpdate)][-2].updates
    assert final["messages"] == [
        {"role": "tool", "content": '{"city": "Oslo"}', "tool_calls": [], "tool_call_id": ANY},
        {"role": "tool", "content": "3", "tool_calls": [], "tool_call_id": ANY},
    ]


async def test_a_durable_agent_suspended_on_an_external_tool_resumes_with_its_result() -> None:
    store = rs.MemoryCheckpointer()
    app = locator(store)
    first = [e async for e in app.run("Where am I?", run_id="r", suspend=True)]
    request = next(e for e in first if isinstance(e, rs.AwaitExternalTools))
    checkpoint = await app.load_checkpoint("r")
    assert checkpoint is not None
    assert checkpoint.next == ["tools"]
    assert isinstance(checkpoint.state["messages"][0], rs.Message)  # decoded to its type
    rest = [e async for e in app.resume(checkpoint, answers={request.request_id: ["Oslo"]})]
    events = first + rest
    check_invariants(events)
    terminal(events, rs.Phase.COMPLETED)
    ends = [e for e in events if isinstance(e, rs.ToolEnd)]
    assert [(e.tool_name, e.result) for e in ends] == [("add", 3)]  # run once


def test_external_tools_are_tool_specs_with_names_of_their_own() -> None:
    model = rs.ScriptedModel(["hi"])
    with pytest.raises(TypeError, match="must be ToolSpec"):
        rs.create_agent(model, external_tools=["get_location"])  # type: ignore[list-item]
    spec = rs.ToolSpec("add", "", {"type": "object"})

    @rs.tool
    def add(a: int) -> int:
        """Add."""
        return a

    with pytest.raises(ValueError, match="two tools are named 'add'"):
        rs.create_agent(model, tools=[add], external_tools=[spec])


async def test_a_durable_agent_suspends_on_an_approval_and_runs_each_tool_once() -> None:
    ran: list[str] = []

    @rs.tool(approval=True)
    def send_mail(to: str) -> str:
        """Send the mail."""
        ran.append(f"mail {to}")
        return f"sent to {to}"

    @rs.tool
    def lookup(name: str) -> str:
        """Look a name up."""
        ran.append(f"lookup {name}")
        return f"{name}@example.org"

    model = rs.ScriptedModel(
        [
            rs.Turn(tool_calls=[("lookup", {"name": "ann"}), ("send_mail", {"to": "ann"})]),
            "Done.",
        ]
    )
    app = rs.create_agent(
        model, tools=[lookup, send_mail], name="mailer", checkpointer=rs.MemoryCheckpointer()
    )
    first = [e async for e in app.run("Mail Ann", run_id="r", suspend=True)]
    assert ran == []  # nothing runs before every approval is in
    question = next(e for e in first if isinstance(e, rs.AwaitClarification))
    checkpoint = await app.load_checkpoint("r")
    assert checkpoint is not None
    rest = [e async for e in app.resume(checkpoint, answers={question.request_id: True})]
    events = first + rest
    check_invariants(events)
    terminal(events, rs.Phase.COMPLETED)
    assert sorted(ran) == ["lookup ann", "mail ann"]
