"""latest_progress: one ToolUpdate per tool call per window, on virtual time."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from _support.ops import (
    Events,
    RecordingScheduler,
    on_completed,
    on_error,
    on_next,
    run_hot,
    timeline,
    values,
)
from runstream import ops


def test_first_passes_then_the_latest_per_window() -> None:
    ev = Events()
    u1, u2, u3, u4 = (ev.update("c1", p) for p in (0.1, 0.2, 0.3, 0.4))
    got = run_hot(
        ops.latest_progress(30),
        on_next(210, u1),  # passes, window 210..240
        on_next(220, u2),
        on_next(230, u3),  # replaces u2
        on_next(250, u4),  # inside the next window 240..270
        on_completed(400),
    )
    assert list(timeline(got)) == [
        (210, "N", u1),
        (240, "N", u3),
        (270, "N", u4),
        (400, "C", None),
    ]


def test_a_window_that_closes_empty_ends_and_the_next_update_passes_at_once() -> None:
    ev = Events()
    u1, u2, u3 = ev.update("c1", 0.1), ev.update("c1", 0.2), ev.update("c1", 0.3)
    got = run_hot(
        ops.latest_progress(30),
        on_next(210, u1),
        on_next(220, u2),  # emitted at 240, next window 240..270 stays empty
        on_next(300, u3),  # no window open: passes at once
    )
    assert list(timeline(got)) == [(210, "N", u1), (240, "N", u2), (300, "N", u3)]


def test_calls_are_throttled_independently_and_other_events_pass() -> None:
    ev = Events()
    sa, sb = ev.start("a"), ev.start("b")
    a1, b1, a2, b2 = (
        ev.update("a", 0.1),
        ev.update("b", 0.1),
        ev.update("a", 0.2),
        ev.update("b", 0.2),
    )
    note = ev.custom()
    got = run_hot(
        ops.latest_progress(30),
        on_next(205, sa),
        on_next(206, sb),
        on_next(210, a1),
        on_next(215, b1),
        on_next(220, a2),
        on_next(225, b2),
        on_next(226, note),
    )
    assert list(timeline(got)) == [
        (205, "N", sa),
        (206, "N", sb),
        (210, "N", a1),
        (215, "N", b1),
        (226, "N", note),
        (240, "N", a2),
        (245, "N", b2),
    ]


def test_tool_end_flushes_its_pending_update_first_and_closes_the_window() -> None:
    ev = Events()
    u1, u2, end = ev.update("c1", 0.5), ev.update("c1", 0.9), ev.end("c1")
    sched = RecordingScheduler()
    got = run_hot(
        ops.latest_progress(30),
        on_next(210, u1),
        on_next(220, u2),
        on_next(225, end),
        on_completed(400),
        scheduler=sched,
    )
    assert list(timeline(got)) == [
        (210, "N", u1),
        (225, "N", u2),
        (225, "N", end),
        (400, "C", None),
    ]
    assert [(due, d.is_disposed) for due, d in sched.timers] == [(240, True)]


def test_tool_end_with_nothing_pending_passes_and_a_late_update_opens_a_new_window() -> None:
    ev = Events()
    u1, end, late = ev.update("c1", 0.5), ev.end("c1"), ev.update("c1", 1.0)
    got = run_hot(
        ops.latest_progress(30),
        on_next(210, u1),
        on_next(215, end),
        on_next(220, late),
    )
    assert list(timeline(got)) == [(210, "N", u1), (215, "N", end), (220, "N", late)]


def test_completion_flushes_every_pending_update_in_arrival_order() -> None:
    ev = Events()
    a1, b1, b2, a2 = (
        ev.update("a", 0.1),
        ev.update("b", 0.1),
        ev.update("b", 0.2),
        ev.update("a", 0.2),
    )
    sched = RecordingScheduler()
    got = run_hot(
        ops.latest_progress(30),
        on_next(210, a1),
        on_next(211, b1),
        on_next(220, b2),
        on_next(221, a2),
        on_completed(230),
        scheduler=sched,
    )
    assert list(timeline(got)) == [
        (210, "N", a1),
        (211, "N", b1),
        (230, "N", b2),
        (230, "N", a2),
        (230, "C", None),
    ]
    assert all(d.is_disposed for _, d in sched.timers)


def test_an_error_flushes_pending_updates_first() -> None:
    ev = Events()
    u1, u2 = ev.update("c1", 0.1), ev.update("c1", 0.2)
    boom = RuntimeError("lost connection")
    got = run_hot(
        ops.latest_progress(30),
        on_next(210, u1),
        on_next(220, u2),
        on_error(225, boom),
    )
    assert list(timeline(got)) == [(210, "N", u1), (225, "N", u2), (225, "E", boom)]


def test_an_empty_stream_just_completes() -> None:
    assert list(timeline(run_hot(ops.latest_progress(1), on_completed(210)))) == [(210, "C", None)]


def test_disposal_mid_window_emits_nothing_more_and_cancels_timers() -> None:
    ev = Events()
    sched = RecordingScheduler()
    u1, u2 = ev.update("c1", 0.1), ev.update("c1", 0.2)
    got = run_hot(
        ops.latest_progress(30),
        on_next(210, u1),
        on_next(220, u2),
        on_completed(300),
        disposed=230,
        scheduler=sched,
    )
    assert list(timeline(got)) == [(210, "N", u1)]
    assert [(due, d.is_disposed) for due, d in sched.timers] == [(240, True)]


def test_the_docstring_marble() -> None:
    # window = 3 ticks; a..e: updates of one call; E: its ToolEnd (ticks x10 here).
    # source:  -a-b-c-----deE-|
    # result:  -a--b--c---d-X-|    (X = e then E, at E's tick)
    ev = Events()
    a, b, c, d, e = (ev.update("c1", p / 10) for p in range(1, 6))
    end = ev.end("c1")
    got = run_hot(
        ops.latest_progress(30),
        on_next(210, a),
        on_next(230, b),
        on_next(250, c),
        on_next(310, d),
        on_next(320, e),
        on_next(330, end),
        on_completed(350),
    )
    assert list(timeline(got)) == [
        (210, "N", a),
        (240, "N", b),
        (270, "N", c),
        (310, "N", d),
        (330, "N", e),
        (330, "N", end),
        (350, "C", None),
    ]


def test_state_is_released_when_windows_close() -> None:
    # Many calls, each with one update and no ToolEnd: every window closes
    # empty and leaves no timer behind.
    ev = Events()
    sched = RecordingScheduler()
    messages: list[Any] = [on_next(210 + i, ev.update(f"c{i}", 0.5)) for i in range(50)]
    got = run_hot(ops.latest_progress(5), *messages, disposed=2000, scheduler=sched)
    assert len(values(got)) == 50
    assert len(sched.timers) == 50
    assert sched.live_timers() == []


def test_validates_its_window() -> None:
    with pytest.raises(ValueError, match="window"):
        ops.latest_progress(0)
    with pytest.raises(ValueError, match="window"):
        ops.latest_progress(float("nan"))


def test_an_observer_that_disposes_during_the_final_flush_gets_nothing_more() -> None:
    ev = Events()
    a1, b1, a2, b2 = (ev.update(c, p) for c, p in (("a", 0.1), ("b", 0.1), ("a", 0.2), ("b", 0.2)))
    got: list[Any] = []
    source: Subject[Any] = Subject()

    def on_item(item: Any) -> None:
        got.append(item)
        if len(got) == 3:
            subscription.dispose()

    subscription = source.pipe(ops.latest_progress(30)).subscribe(
        on_item, scheduler=TestScheduler()
    )
    for update in (a1, b1, a2, b2):
        source.on_next(update)
    source.on_completed()
    assert got == [a1, b1, a2]
