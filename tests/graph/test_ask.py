"""Human in the loop, in one process: `ctx.ask`, `ctx.external_tools` and `rs.Inbox`."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import runstream as rs
from _support.invariants import check_invariants, failure_of, settle, terminal

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def single(node: Any) -> rs.CompiledGraph:
    g = rs.StateGraph(name="asker")
    g.add_node("book", node)
    g.add_edge(rs.START, "book")
    return g.compile()


async def book(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
    await ctx.phase(rs.Phase.EXECUTING_TOOLS)
    when = await ctx.ask("For what time?")
    return {"booked": when}


async def answered(app: rs.CompiledGraph, answers: dict[type, Any], **kw: Any) -> list[rs.Event]:
    """Run `app`, answering each request as it comes; the run's events."""
    inbox = rs.Inbox()
    events: list[rs.Event] = []
    async for event in app.run({}, inbox=inbox, **kw):
        events.append(event)
        if isinstance(event, rs.AwaitClarification | rs.AwaitExternalTools):
            assert inbox.waiting == [event.request_id]
            inbox.answer(event.request_id, answers[type(event)])
    check_invariants(events)
    assert inbox.waiting == []
    return events


async def test_ask_waits_for_the_answer_and_returns_it() -> None:
    events = await answered(single(book), {rs.AwaitClarification: "19:30"})
    question = next(e for e in events if isinstance(e, rs.AwaitClarification))
    at = events.index(question)
    assert question.question == "For what time?"
    assert question.tool_call is None
    awaiting, back = events[at + 1], events[at + 2]
    assert isinstance(awaiting, rs.Workflow)
    assert awaiting.phase is rs.Phase.AWAITING
    assert isinstance(back, rs.Workflow)
    assert back.phase is rs.Phase.EXECUTING_TOOLS  # the phase it left
    update = next(e for e in events if isinstance(e, rs.StateUpdate))
    assert update.updates == {"booked": "19:30"}
    terminal(events, rs.Phase.COMPLETED)


async def test_external_tools_return_one_result_per_call() -> None:
    calls = [rs.ToolCall("c1", "get_location"), rs.ToolCall("c2", "get_time")]

    async def node(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
        return {"results": await ctx.external_tools(calls)}

    events = await answered(single(node), {rs.AwaitExternalTools: ["Oslo", "12:00"]})
    request = next(e for e in events if isinstance(e, rs.AwaitExternalTools))
    assert list(request.calls) == calls
    update = next(e for e in events if isinstance(e, rs.StateUpdate))
    assert update.updates == {"results": ["Oslo", "12:00"]}
    back = events[events.index(request) + 2]
    assert isinstance(back, rs.Workflow)
    assert back.phase is rs.Phase.PLANNING  # no phase was entered before


async def test_a_wrong_number_of_results_is_refused_and_the_request_stays_open() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
        return {"where": await ctx.external_tools([rs.ToolCall("c1", "get_location")])}

    inbox = rs.Inbox()
    events: list[rs.Event] = []
    async for event in single(node).run({}, inbox=inbox):
        events.append(event)
        if isinstance(event, rs.AwaitExternalTools):
            for wrong in ("Oslo", ["Oslo", "Bergen"]):
                with pytest.raises(ValueError, match="list of 1 results"):
                    inbox.answer(event.request_id, wrong)
            with pytest.raises(rs.UnknownRequest, match="in run 'other'"):
                inbox.answer(event.request_id, ["Oslo"], run_id="other")
            inbox.answer(event.request_id, ["Oslo"], run_id=event.run_id)
    check_invariants(events)
    assert events[-2].updates == {"where": ["Oslo"]}  # type: ignore[union-attr]


async def test_unknown_and_repeated_answers_are_refused() -> None:
    inbox = rs.Inbox()
    with pytest.raises(rs.UnknownRequest, match="no run waits"):
        inbox.answer("ask_nope", 1)
    events: list[rs.Event] = []
    async for event in single(book).run({}, inbox=inbox):
        events.append(event)
        if isinstance(event, rs.AwaitClarification):
            inbox.answer(event.request_id, "noon")
            with pytest.raises(rs.AlreadyAnswered):
                inbox.answer(event.request_id, "one")
    asked = next(e for e in events if isinstance(e, rs.AwaitClarification))
    with pytest.raises(rs.UnknownRequest):  # the run is over
        inbox.answer(asked.request_id, "late")
    assert events[-2].updates == {"booked": "noon"}  # type: ignore[union-attr]


async def test_no_answer_in_time_ends_the_run_canceled_with_a_reason() -> None:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.ask("Anyone there?", timeout=0.05)

    inbox = rs.Inbox()
    events = [e async for e in single(node).run({}, inbox=inbox)]
    check_invariants(events)
    ended = terminal(events, rs.Phase.CANCELED)
    assert ended.error is not None
    assert ended.error.type == "TimeoutError"
    assert "no answer to 'ask" in ended.error.message
    assert inbox.waiting == []
    await settle()


async def test_cancelling_a_waiting_run_ends_its_request() -> None:
    inbox = rs.Inbox()
    asked = anyio.Event()
    seen = rs.MemorySink[rs.Event]()

    def on_event(event: rs.Event) -> None:
        if isinstance(event, rs.AwaitClarification):
            asked.set()

    attachment = rs.attach(single(book).run({}, inbox=inbox), seen, rs.CallbackSink(on_event))
    await asked.wait()
    [request_id] = inbox.waiting
    attachment.cancel()
    await attachment.wait()
    terminal(seen.items, rs.Phase.CANCELED)
    with pytest.raises(rs.UnknownRequest):
        inbox.answer(request_id, "too late")
    await settle()


async def test_asking_without_an_inbox_fails_the_run_saying_what_to_do() -> None:
    _, failed = await failure_of(single(book).run({}))
    assert failed.error.type == "RuntimeError"
    assert "inbox=rs.Inbox()" in failed.error.message


async def test_a_child_run_asks_through_its_parents_inbox() -> None:
    child = single(book)

    async def parent(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
        result = await ctx.call_agent(child, {}, tool_name="booker")
        return {"child": result}

    g = rs.StateGraph(name="parent")
    g.add_node("delegate", parent)
    g.add_edge(rs.START, "delegate")
    events = await answered(g.compile(), {rs.AwaitClarification: "20:00"})
    question = next(e for e in events if isinstance(e, rs.AwaitClarification))
    assert question.parent_run_id == events[0].run_id
    terminal(events, rs.Phase.COMPLETED)
