"""profile: what each built-in and custom profile keeps, on a realistic run."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import reactivex

import runstream as rs
from _support.invariants import check_invariants
from _support.ops import CHILD, Events, on_completed, on_error, on_next, run_hot, timeline
from runstream import ops
from runstream.ops import Profile

P = rs.Phase


def realistic_run() -> list[rs.Event]:
    """A root run that thinks, routes, calls a tool and a child agent, asks, answers."""
    ev = Events()
    events = [
        ev.workflow(P.STARTED),
        ev.workflow(P.PLANNING),
        ev.thought("I should search", "t1"),
        ev.thought("", "t1", done=True),
        ev.reply("route: search", "r0", done=True, internal=True),
        ev.usage("big", 100, 20),
        ev.workflow(P.EXECUTING_TOOLS),
        ev.start("c1", "search", {"q": "weather"}),
        ev.update("c1", 0.5),
        ev.end("c1", "search"),
        ev.start("c2", "researcher", {"topic": "rain"}),
        ev.make(
            rs.AgentRunStarted,
            tool_call_id="c2",
            tool_name="researcher",
            child_run_id=CHILD.run_id,
            child_agent=CHILD.agent,
        ),
        ev.workflow(P.STARTED, run=CHILD),
        ev.thought("child thinks", "ct", done=True, run=CHILD),
        ev.reply("child found rain", "cr", done=True, run=CHILD),
        ev.usage("small", 10, 5, run=CHILD),
        ev.workflow(P.COMPLETED, run=CHILD),
        ev.end("c2", "researcher", error=rs.ErrorInfo("Timeout", "slow", retryable=True)),
        ev.make(rs.StateUpdate, updates={"notes": ["rain"]}),
        ev.custom("debug"),
        ev.make(rs.AwaitClarification, request_id="q1", question="Which city?"),
        ev.make(
            rs.AwaitExternalTools,
            request_id="q2",
            calls=(rs.ToolCall("x1", "browser", {"url": "https://example.org"}),),
        ),
        ev.workflow(P.SYNTHESIZING),
        ev.reply("It will ", "m2"),
        ev.reply("rain.", "m2", done=True),
        ev.usage("big", 50, 30),
        ev.workflow(P.COMPLETED),
    ]
    check_invariants(events)
    return events


def apply(p: Profile | str, events: list[rs.Event]) -> list[rs.Event]:
    out: list[rs.Event] = []
    reactivex.from_iterable(events).pipe(ops.profile(p)).subscribe(out.append)
    return out


def test_user_chat_keeps_what_a_chat_window_shows() -> None:
    events = realistic_run()
    out = apply(Profile.USER_CHAT, events)
    assert [(type(e).__name__, e.run_id) for e in out] == [
        ("ToolStart", "root"),
        ("ToolEnd", "root"),
        ("ToolStart", "root"),
        ("AgentRunStarted", "root"),
        ("AssistantReply", "child"),  # child replies are shown, linked by AgentRunStarted
        ("ToolEnd", "root"),
        ("AwaitClarification", "root"),
        ("AwaitExternalTools", "root"),
        ("AssistantReply", "root"),
        ("AssistantReply", "root"),
        ("Workflow", "root"),
    ]
    # Seqs are those of the source: a consumer can resume after any of them.
    by_seq = {e.seq: e for e in events}
    assert [e.seq for e in out] == sorted({e.seq for e in out})
    assert all(type(by_seq[e.seq]) is type(e) for e in out)
    last = out[-1]
    assert isinstance(last, rs.Workflow)
    assert last.phase is P.COMPLETED


def test_user_chat_hides_thoughts_and_internal_text() -> None:
    out = apply("user_chat", realistic_run())
    assert not any(isinstance(e, rs.PlannerThought) for e in out)
    replies = [e for e in out if isinstance(e, rs.AssistantReply)]
    assert all(not e.internal for e in replies)
    assert "".join(e.text for e in replies) == "child found rainIt will rain."


def test_user_chat_strips_tool_data_down_to_name_and_status() -> None:
    events = realistic_run()
    out = apply(Profile.USER_CHAT, events)
    starts = [e for e in out if isinstance(e, rs.ToolStart)]
    ends = [e for e in out if isinstance(e, rs.ToolEnd)]
    assert [(s.tool_call_id, s.tool_name, s.payload) for s in starts] == [
        ("c1", "search", {}),
        ("c2", "researcher", {}),
    ]
    assert [(e.tool_call_id, e.tool_name, e.result, e.error, e.duration) for e in ends] == [
        ("c1", "search", None, None, 0.25),
        ("c2", "researcher", None, rs.ErrorInfo("Timeout", "slow", retryable=True), 0.25),
    ]
    originals = {e.seq: e for e in events}
    for e in starts:
        assert e == attrs.evolve(originals[e.seq], payload={})
    # The calls a client must run itself keep their arguments.
    [awaits] = [e for e in out if isinstance(e, rs.AwaitExternalTools)]
    assert awaits.calls[0].payload == {"url": "https://example.org"}


def test_user_chat_keeps_only_the_root_terminal_workflow() -> None:
    out = apply(Profile.USER_CHAT, realistic_run())
    flows = [e for e in out if isinstance(e, rs.Workflow)]
    assert [(e.run_id, e.phase) for e in flows] == [("root", P.COMPLETED)]


@pytest.mark.parametrize("phase", [P.FAILED, P.CANCELED])
def test_user_chat_keeps_a_failed_or_canceled_end_with_its_error(phase: rs.Phase) -> None:
    ev = Events()
    error = rs.ErrorInfo("RuntimeError", "boom")
    events = [ev.workflow(P.STARTED), ev.reply("hi", done=True), ev.workflow(phase, error=error)]
    out = apply(Profile.USER_CHAT, events)
    assert out == events[1:]


def test_agent_debug_keeps_everything_unchanged() -> None:
    events = realistic_run()
    out = apply(Profile.AGENT_DEBUG, events)
    assert len(out) == len(events)
    assert all(a is b for a, b in zip(out, events, strict=True))
    source = reactivex.from_iterable(events)
    assert ops.profile("agent_debug")(source) is source


def test_metrics_keeps_usage_and_workflow_of_every_run() -> None:
    events = realistic_run()
    out = apply("metrics", events)
    assert out == [e for e in events if isinstance(e, rs.Usage | rs.Workflow)]
    assert {e.run_id for e in out} == {"root", "child"}
    assert len(out) == 10


def test_names_find_the_built_in_profiles() -> None:
    assert Profile.named("user_chat") is Profile.USER_CHAT
    assert Profile.named("agent_debug") is Profile.AGENT_DEBUG
    assert Profile.named("metrics") is Profile.METRICS
    assert [p.name for p in (Profile.USER_CHAT, Profile.AGENT_DEBUG, Profile.METRICS)] == [
        "user_chat",
        "agent_debug",
        "metrics",
    ]


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown profile 'chat'") as info:
        ops.profile("chat")
    assert "agent_debug, metrics, user_chat" in str(info.value)


def test_a_custom_profile_narrows_by_class_run_and_data() -> None:
    events = realistic_run()
    custom = Profile(
        name="tools",
        include=frozenset({rs.ToolStart, rs.ToolUpdate, rs.ToolEnd}),
        strip_tool_data=True,
        root_only=True,
    )
    out = apply(custom, events)
    assert [(type(e).__name__, e.tool_call_id) for e in out] == [
        ("ToolStart", "c1"),
        ("ToolUpdate", "c1"),
        ("ToolEnd", "c1"),
        ("ToolStart", "c2"),
        ("ToolEnd", "c2"),
    ]
    [update] = [e for e in out if isinstance(e, rs.ToolUpdate)]
    assert (update.progress, update.message, update.data) == (0.5, "c1 at 0.5", None)


def test_a_custom_profile_can_hide_only_internal_text() -> None:
    events = realistic_run()
    out = apply(Profile(hide_internal=True), events)
    hidden = [e for e in events if getattr(e, "internal", False)]
    assert len(hidden) == 1
    assert out == [e for e in events if e not in hidden]


def test_a_root_only_profile_drops_child_runs() -> None:
    out = apply(Profile(root_only=True), realistic_run())
    assert {e.run_id for e in out} == {"root"}


def test_profiles_are_frozen_values() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Profile.USER_CHAT.hide_thoughts = False  # type: ignore[misc]
    assert Profile(name="x") == Profile(name="x")
    assert Profile().keeps_everything
    assert not Profile.USER_CHAT.keeps_everything


def test_errors_and_completion_pass_through() -> None:
    ev = Events()
    reply, thought = ev.reply("a", done=True), ev.thought("t")
    boom = RuntimeError("run failed")
    got = run_hot(
        ops.profile(Profile.USER_CHAT),
        on_next(210, thought),
        on_next(220, reply),
        on_error(230, boom),
    )
    assert list(timeline(got)) == [(220, "N", reply), (230, "E", boom)]
    assert list(timeline(run_hot(ops.profile("metrics"), on_completed(210)))) == [(210, "C", None)]


def test_items_of_no_event_class_pass_only_without_an_include_set() -> None:
    items: list[Any] = ["not an event"]
    assert apply(Profile(hide_thoughts=True), items) == items
    assert apply(Profile.METRICS, items) == []
