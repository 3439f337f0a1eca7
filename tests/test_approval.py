"""`@rs.tool(approval=True)` in `create_agent`: the user approves or denies each call."""

from __future__ import annotations

from typing import Any

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
