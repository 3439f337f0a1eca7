"""of_type and root_only: cheap filters that keep order and pass errors on."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex

import runstream as rs
from _support.ops import CHILD, Events, on_completed, on_error, on_next, run_hot, timeline
from runstream import ops


def collect(source: list[Any], *operators: Any) -> list[Any]:
    out: list[Any] = []
    reactivex.from_iterable(source).pipe(*operators).subscribe(out.append)
    return out


def sample() -> list[rs.Event]:
    ev = Events()
    return [
        ev.workflow(rs.Phase.STARTED),
        ev.reply("a"),
        ev.start("c1"),
        ev.update("c1", 0.5),
        ev.end("c1"),
        ev.reply("child", run=CHILD),
        ev.end("c2", run=CHILD),
        ev.workflow(rs.Phase.COMPLETED),
    ]


def test_of_type_keeps_one_class_in_order() -> None:
    events = sample()
    assert collect(events, ops.of_type(rs.ToolEnd)) == [events[4], events[6]]


def test_of_type_keeps_several_classes_in_order() -> None:
    events = sample()
    got = collect(events, ops.of_type(rs.ToolStart, rs.ToolEnd, rs.Workflow))
    assert got == [events[i] for i in (0, 2, 4, 6, 7)]


def test_of_type_matches_subclasses_like_isinstance() -> None:
    class Base:
        pass

    class Derived(Base):
        pass

    items: list[Any] = [Base(), Derived(), 1, "x", True]
    assert collect(items, ops.of_type(Base)) == items[:2]
    assert collect(items, ops.of_type(int)) == [1, True]


def test_of_type_needs_classes() -> None:
    with pytest.raises(TypeError, match="at least one class"):
        ops.of_type()
    with pytest.raises(TypeError, match="takes classes"):
        ops.of_type("ToolEnd")  # type: ignore[call-overload]


def test_root_only_drops_child_run_events_but_keeps_the_links() -> None:
    events = sample()
    got = collect(events, ops.root_only())
    assert got == [e for e in events if e.run_id == "root"]
    assert len(got) == 6


@pytest.mark.parametrize("operator", [ops.of_type(rs.Usage), ops.root_only()])
def test_filters_pass_completion_and_errors_on(operator: Any) -> None:
    ev = Events()
    boom = RuntimeError("x")
    usage = ev.usage("m", 1, 1)
    got = run_hot(operator, on_next(210, usage), on_error(220, boom))
    assert list(timeline(got)) == [(210, "N", usage), (220, "E", boom)]
    assert list(timeline(run_hot(operator, on_completed(210)))) == [(210, "C", None)]


@pytest.mark.parametrize("operator", [ops.of_type(rs.Usage), ops.root_only()])
def test_filters_stop_at_disposal(operator: Any) -> None:
    ev = Events()
    got = run_hot(
        operator,
        on_next(210, ev.usage("m", 1, 1)),
        on_next(260, ev.usage("m", 2, 2)),
        disposed=250,
    )
    assert [t for t, _, _ in timeline(got)] == [210]
