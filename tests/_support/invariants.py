"""Run checks shared by the tests: no task left behind, the run invariants."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence

import pytest

import runstream as rs


async def settle(max_rounds: int = 100) -> None:
    """Let cancelled tasks finish, then assert that no task but the caller is left."""
    current = asyncio.current_task()
    for _ in range(max_rounds):
        others = [
            t
            for t in asyncio.all_tasks()
            if t is not current and not t.done() and "TestRunner" not in repr(t.get_coro())
        ]
        if not others:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"tasks left behind: {others}")


def check_invariants(events: Sequence[rs.Event]) -> None:
    """Assert the run invariants of DESIGN.md over one root run's events."""
    assert [e.seq for e in events] == list(range(len(events))), "seq must be 0..N-1"
    by_run: dict[str, list[rs.Event]] = defaultdict(list)
    for e in events:
        by_run[e.run_id].append(e)
    position = {id(e): i for i, e in enumerate(events)}
    for run_id, evs in by_run.items():
        first = evs[0]
        assert isinstance(first, rs.Workflow), f"{run_id}: first event {first}"
        assert first.phase is rs.Phase.STARTED
        terminals = [e for e in evs if isinstance(e, rs.Workflow) and e.phase.is_terminal]
        assert len(terminals) == 1, f"{run_id}: {len(terminals)} terminal events"
        assert terminals[0] is evs[-1], f"{run_id}: terminal event is not the last"
    messages: dict[str, list[rs.AssistantReply | rs.PlannerThought]] = defaultdict(list)
    for e in events:
        if isinstance(e, rs.AssistantReply | rs.PlannerThought):
            messages[e.message_id].append(e)
    for message_id, chunks in messages.items():
        done = [c.done for c in chunks]
        assert done == [False] * (len(done) - 1) + [True], f"message {message_id}: done {done}"
        assert len({c.run_id for c in chunks}) == 1, f"message {message_id} spans runs"
    starts = {e.child_run_id: e for e in events if isinstance(e, rs.AgentRunStarted)}
    ends = {e.tool_call_id: e for e in events if isinstance(e, rs.ToolEnd)}
    tool_starts = [e for e in events if isinstance(e, rs.ToolStart)]
    ids = [e.tool_call_id for e in tool_starts]
    assert len(ids) == len(set(ids)), "tool_call_id must be unique in the run tree"
    tool_ends = [e.tool_call_id for e in events if isinstance(e, rs.ToolEnd)]
    assert len(tool_ends) == len(set(tool_ends)), "one ToolEnd per tool call"
    for start in tool_starts:
        end = ends.get(start.tool_call_id)
        assert end is not None, f"ToolStart {start.tool_call_id} has no ToolEnd"
        assert end.run_id == start.run_id, "a ToolEnd belongs to the run of its ToolStart"
        assert position[id(start)] < position[id(end)], "ToolEnd must follow its ToolStart"
    for child_run_id, link in starts.items():
        assert child_run_id in by_run, f"AgentRunStarted for {child_run_id}, which never ran"
        assert link.tool_call_id in ids, "AgentRunStarted belongs to a tool call"
    for run_id, evs in by_run.items():
        parent = evs[0].parent_run_id
        if parent is None:
            continue
        link = starts[run_id]
        assert link.run_id == parent
        assert position[id(link)] < position[id(evs[0])], "AgentRunStarted must come first"
        end = ends.get(link.tool_call_id)
        if end is not None:
            assert position[id(evs[-1])] < position[id(end)], "child must end before ToolEnd"


def terminal(events: Sequence[rs.Event], phase: rs.Phase) -> rs.Workflow:
    """The run's last event, checked to be its terminal `Workflow` in `phase`."""
    last = events[-1]
    assert isinstance(last, rs.Workflow)
    assert last.phase is phase
    return last


async def failure_of(stream: rs.RunStream) -> tuple[list[rs.Event], rs.RunFailed]:
    """Run `stream` to its `RunFailed`; check the invariants and that no task is left."""
    events: list[rs.Event] = []

    async def consume() -> None:
        async for event in stream:
            events.append(event)

    with pytest.raises(rs.RunFailed) as info:
        await consume()
    check_invariants(events)
    await settle()
    return events, info.value
