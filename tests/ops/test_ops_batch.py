"""batch: lists by count or delay, on virtual time, plus argument checks."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from _support.ops import (
    RecordingScheduler,
    on_completed,
    on_error,
    on_next,
    run_hot,
    timeline,
    values,
)
from runstream import ops


def test_the_docstring_marble() -> None:
    # batch(max_items=3, max_delay=4 ticks); ticks x10 here.
    # source:  -a-b-c-d-------e---|
    # result:  -----X-----Y-------Z    (Z, then completion)
    got = run_hot(
        ops.batch(3, 40),
        on_next(210, "a"),
        on_next(230, "b"),
        on_next(250, "c"),
        on_next(270, "d"),
        on_next(350, "e"),
        on_completed(390),
    )
    assert list(timeline(got)) == [
        (250, "N", ["a", "b", "c"]),
        (310, "N", ["d"]),
        (390, "N", ["e"]),
        (390, "C", None),
    ]


def test_the_delay_counts_from_the_first_item_of_each_list() -> None:
    got = run_hot(
        ops.batch(100, 30),
        on_next(210, 1),
        on_next(220, 2),
        on_next(239, 3),
        on_next(241, 4),
        on_next(300, 5),
    )
    assert list(timeline(got)) == [(240, "N", [1, 2, 3]), (271, "N", [4]), (330, "N", [5])]


def test_one_timer_per_list_and_a_full_list_cancels_its_timer() -> None:
    sched = RecordingScheduler()
    got = run_hot(
        ops.batch(2, 50),
        *[on_next(210 + i, i) for i in range(6)],
        on_completed(400),
        scheduler=sched,
    )
    assert values(got) == [[0, 1], [2, 3], [4, 5]]
    assert [d.is_disposed for _, d in sched.timers] == [True, True, True]


def test_a_stale_timer_never_emits_an_empty_or_early_list() -> None:
    got = run_hot(
        ops.batch(2, 50),
        on_next(210, "a"),
        on_next(220, "b"),  # full: the 260 timer is cancelled
        on_next(250, "c"),  # its own timer is due at 300, not 260
        on_completed(400),
    )
    assert list(timeline(got)) == [
        (220, "N", ["a", "b"]),
        (300, "N", ["c"]),
        (400, "C", None),
    ]


def test_max_items_one_emits_each_item_at_once_without_timers() -> None:
    sched = RecordingScheduler()
    got = run_hot(
        ops.batch(1, 10),
        on_next(210, "a"),
        on_next(211, "b"),
        scheduler=sched,
    )
    assert list(timeline(got)) == [(210, "N", ["a"]), (211, "N", ["b"])]
    assert sched.timers == []


def test_completion_while_a_list_is_open_emits_it_first() -> None:
    sched = RecordingScheduler()
    got = run_hot(
        ops.batch(10, 50),
        on_next(210, "a"),
        on_next(220, "b"),
        on_completed(230),
        scheduler=sched,
    )
    assert list(timeline(got)) == [(230, "N", ["a", "b"]), (230, "C", None)]
    assert [d.is_disposed for _, d in sched.timers] == [True]


def test_an_error_emits_the_open_list_first() -> None:
    boom = RuntimeError("boom")
    got = run_hot(
        ops.batch(10, 50),
        on_next(210, "a"),
        on_error(220, boom),
    )
    assert list(timeline(got)) == [(220, "N", ["a"]), (220, "E", boom)]


def test_an_empty_stream_emits_no_list() -> None:
    assert list(timeline(run_hot(ops.batch(3, 5), on_completed(250)))) == [(250, "C", None)]
    boom = ValueError("x")
    assert list(timeline(run_hot(ops.batch(3, 5), on_error(250, boom)))) == [(250, "E", boom)]


def test_disposal_mid_window_emits_nothing_more_and_cancels_the_timer() -> None:
    sched = RecordingScheduler()
    got = run_hot(
        ops.batch(10, 50),
        on_next(210, "a"),
        on_completed(300),
        disposed=220,
        scheduler=sched,
    )
    assert got == []
    assert [(due, d.is_disposed) for due, d in sched.timers] == [(260, True)]


def test_an_explicit_scheduler_is_used_over_the_subscribers() -> None:
    subscribed, explicit = TestScheduler(), TestScheduler()
    out: list[Any] = []
    source: Subject[int] = Subject()
    source.pipe(ops.batch(10, 5, scheduler=explicit)).subscribe(out.append, scheduler=subscribed)
    source.on_next(1)
    subscribed.advance_to(100)
    assert out == []
    explicit.advance_to(5)
    assert out == [[1]]


def test_with_no_scheduler_the_timer_thread_and_the_source_never_overlap() -> None:
    out: list[list[int]] = []
    got_one = threading.Event()
    source: Subject[int] = Subject()

    def collect(items: list[int]) -> None:
        out.append(items)
        got_one.set()

    sub = source.pipe(ops.batch(1000, 0.005)).subscribe(collect)
    for i in range(20_000):
        source.on_next(i)
        if i == 10:
            assert got_one.wait(5)  # at least one list emitted by the timer thread
    source.on_completed()
    sub.dispose()
    assert [i for items in out for i in items] == list(range(20_000))
    assert all(0 < len(items) <= 1000 for items in out)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0, 1.0), ValueError, "max_items must be positive"),
        ((-3, 1.0), ValueError, "max_items"),
        ((10, 0), ValueError, "max_delay must be positive"),
        ((10, -0.5), ValueError, "max_delay"),
        ((10, float("inf")), ValueError, "max_delay"),
        ((2.5, 1.0), TypeError, "max_items must be an int"),
        ((True, 1.0), TypeError, "max_items"),
        ((10, "1"), TypeError, "max_delay must be a number"),
    ],
)
def test_validates_its_arguments(args: tuple[Any, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ops.batch(*args)


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=20), max_size=60),
    max_items=st.integers(min_value=1, max_value=8),
    max_delay=st.integers(min_value=1, max_value=30),
)
def test_batches_are_the_stream_cut_in_order(
    gaps: list[int], max_items: int, max_delay: int
) -> None:
    times, now = [], 210
    for gap in gaps:
        now += gap
        times.append(now)
    got = run_hot(
        ops.batch(max_items, max_delay),
        *[on_next(t, i) for i, t in enumerate(times)],
        on_completed(now + 1),
        disposed=10_000,
    )
    lists = values(got)
    assert [i for items in lists for i in items] == list(range(len(times)))
    assert all(0 < len(items) <= max_items for items in lists)
    for time, kind, items in timeline(got):
        if kind == "N":
            assert time - times[items[0]] <= max_delay
