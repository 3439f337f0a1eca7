"""coalesce_text: merging reply and thought deltas on virtual time, losslessly."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio
import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as rx_ops
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import runstream as rs
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


def merged(last: Any, text: str) -> Any:
    return attrs.evolve(last, text=text)


def test_chunks_within_the_window_become_one_event_at_its_end() -> None:
    ev = Events()
    a1, a2, a3 = ev.reply("Hel"), ev.reply("lo "), ev.reply("world")
    got = run_hot(
        ops.coalesce_text(window=50),
        on_next(210, a1),
        on_next(220, a2),
        on_next(230, a3),
        on_completed(400),
    )
    assert list(timeline(got)) == [
        (260, "N", merged(a3, "Hello world")),
        (400, "C", None),
    ]
    [out] = values(got)
    assert (out.seq, out.ts, out.done, out.message_id) == (a3.seq, a3.ts, False, "m1")


def test_the_docstring_marble() -> None:
    # window = 4 ticks (x10 here); a, b, c = messages; ! = c's done chunk; T = ToolStart
    # source:  -a-a---a-b-T-c!-|
    # result:  -----A---A-X--C-|    (X = b, then T)
    ev = Events()
    a1, a2, a3 = ev.reply("a1", "a"), ev.reply("a2", "a"), ev.reply("a3", "a")
    b, tool = ev.reply("b", "b"), ev.start("c1")
    c, bang = ev.reply("c", "c"), ev.reply("!", "c", done=True)
    got = run_hot(
        ops.coalesce_text(window=40),
        on_next(210, a1),
        on_next(230, a2),
        on_next(270, a3),
        on_next(290, b),
        on_next(310, tool),
        on_next(330, c),
        on_next(340, bang),
        on_completed(360),
    )
    assert list(timeline(got)) == [
        (250, "N", merged(a2, "a1a2")),
        (290, "N", a3),
        (310, "N", b),
        (310, "N", tool),
        (340, "N", merged(bang, "c!")),
        (360, "C", None),
    ]


def test_the_window_counts_from_the_first_chunk_held() -> None:
    ev = Events()
    a1, a2, a3 = ev.reply("a"), ev.reply("b"), ev.reply("c")
    got = run_hot(
        ops.coalesce_text(window=50),
        on_next(210, a1),
        on_next(250, a2),  # inside 210..260
        on_next(270, a3),  # after the flush at 260: starts a new merged event
        on_completed(500),
    )
    assert list(timeline(got)) == [
        (260, "N", merged(a2, "ab")),
        (320, "N", a3),
        (500, "C", None),
    ]


def test_a_chunk_of_another_message_or_class_flushes_first() -> None:
    ev = Events()
    a1, a2 = ev.reply("a1", "a"), ev.reply("a2", "a")
    b1 = ev.reply("b1", "b")
    t1 = ev.thought("t1", "b")  # same message id, other class: not merged
    b2 = ev.reply("b2", "b")
    got = run_hot(
        ops.coalesce_text(window=100),
        on_next(210, a1),
        on_next(211, a2),
        on_next(212, b1),
        on_next(213, t1),
        on_next(214, b2),
        on_completed(215),
    )
    assert list(timeline(got)) == [
        (212, "N", merged(a2, "a1a2")),
        (213, "N", b1),
        (214, "N", t1),
        (215, "N", b2),
        (215, "C", None),
    ]


def test_thoughts_are_merged_like_replies() -> None:
    ev = Events()
    t1, t2 = ev.thought("let me "), ev.thought("think", done=True)
    got = run_hot(ops.coalesce_text(window=50), on_next(210, t1), on_next(215, t2))
    assert list(timeline(got)) == [(215, "N", merged(t2, "let me think"))]
    assert isinstance(values(got)[0], rs.PlannerThought)


def test_any_other_event_flushes_the_held_text_and_then_passes() -> None:
    ev = Events()
    a1, a2, start, a3 = ev.reply("x"), ev.reply("y"), ev.start("c1"), ev.reply("z")
    got = run_hot(
        ops.coalesce_text(window=50),
        on_next(210, a1),
        on_next(220, a2),
        on_next(230, start),
        on_next(240, a3),
    )
    assert list(timeline(got)) == [
        (230, "N", merged(a2, "xy")),
        (230, "N", start),
        (290, "N", a3),
    ]


def test_done_flushes_at_once_and_survives() -> None:
    ev = Events()
    a1, a2, end = ev.reply("all "), ev.reply("done"), ev.reply("", done=True)
    only = ev.reply("single", "m2", done=True)
    got = run_hot(
        ops.coalesce_text(window=50),
        on_next(210, a1),
        on_next(220, a2),
        on_next(225, end),
        on_next(230, only),  # nothing held: passes as it is, no timer
    )
    out = values(got)
    assert list(timeline(got)) == [(225, "N", merged(end, "all done")), (230, "N", only)]
    assert all(e.done for e in out)
    assert out[1] is only


def test_max_chars_flushes_as_soon_as_reached_and_never_splits() -> None:
    ev = Events()
    a1, a2, a3 = ev.reply("abc"), ev.reply("defg"), ev.reply("h")
    big = ev.reply("0123456789", "m2")
    got = run_hot(
        ops.coalesce_text(window=50, max_chars=6),
        on_next(210, a1),
        on_next(220, a2),  # 7 chars >= 6: flushed now
        on_next(230, a3),
        on_next(240, big),  # longer than max_chars alone: passes whole, at once
        on_completed(300),
    )
    assert list(timeline(got)) == [
        (220, "N", merged(a2, "abcdefg")),
        (240, "N", a3),
        (240, "N", big),
        (300, "C", None),
    ]


def test_a_single_chunk_is_emitted_as_the_same_object() -> None:
    ev = Events()
    a1 = ev.reply("alone")
    got = run_hot(ops.coalesce_text(window=10), on_next(210, a1))
    assert values(got)[0] is a1


def test_completion_while_a_window_is_open_flushes_before_completing() -> None:
    ev = Events()
    a1, a2 = ev.reply("not "), ev.reply("lost")
    sched = RecordingScheduler()
    got = run_hot(
        ops.coalesce_text(window=50),
        on_next(210, a1),
        on_next(220, a2),
        on_completed(230),
        scheduler=sched,
    )
    assert list(timeline(got)) == [(230, "N", merged(a2, "not lost")), (230, "C", None)]
    assert [d.is_disposed for _, d in sched.timers] == [True]


def test_an_error_flushes_the_held_text_first() -> None:
    ev = Events()
    a1, a2 = ev.reply("partial "), ev.reply("text")
    boom = RuntimeError("model went away")
    got = run_hot(
        ops.coalesce_text(window=50),
        on_next(210, a1),
        on_next(220, a2),
        on_error(230, boom),
        on_next(240, ev.reply("after")),
    )
    assert list(timeline(got)) == [(230, "N", merged(a2, "partial text")), (230, "E", boom)]


def test_an_empty_stream_just_completes() -> None:
    got = run_hot(ops.coalesce_text(), on_completed(250))
    assert list(timeline(got)) == [(250, "C", None)]


def test_disposal_mid_window_emits_nothing_more_and_cancels_the_timer() -> None:
    ev = Events()
    sched = RecordingScheduler()
    got = run_hot(
        ops.coalesce_text(window=50),
        on_next(210, ev.reply("held")),
        on_next(220, ev.reply(" more")),
        on_completed(400),
        disposed=230,
        scheduler=sched,
    )
    assert got == []
    assert [(due, d.is_disposed) for due, d in sched.timers] == [(260, True)]


def test_window_is_in_seconds_of_the_scheduler_clock() -> None:
    # TestScheduler counts seconds: the default window of 0.05 is 0.05 ticks.
    ev = Events()
    a1, a2, a3 = ev.reply("a"), ev.reply("b"), ev.reply("c")
    got = run_hot(
        ops.coalesce_text(),
        on_next(210.0, a1),
        on_next(210.02, a2),
        on_next(210.07, a3),  # after the 210.05 flush
        on_completed(300),
    )
    got_times = [(round(t, 6), kind, v) for t, kind, v in timeline(got)]
    assert got_times == [
        (210.05, "N", merged(a2, "ab")),
        (210.12, "N", a3),
        (300, "C", None),
    ]


def test_an_explicit_scheduler_is_used_over_the_subscribers() -> None:
    ev = Events()
    subscribed, explicit = TestScheduler(), TestScheduler()
    out: list[Any] = []
    source: Subject[Any] = Subject()
    source.pipe(ops.coalesce_text(window=5, scheduler=explicit)).subscribe(
        out.append, scheduler=subscribed
    )
    source.on_next(ev.reply("x"))
    subscribed.advance_to(100)
    assert out == []
    explicit.advance_to(5)
    assert [e.text for e in out] == ["x"]


def test_with_no_scheduler_timers_run_on_threads_and_keep_order() -> None:
    ev = Events()
    out: list[Any] = []
    flushed = threading.Event()
    source: Subject[Any] = Subject()

    def collect(item: Any) -> None:
        out.append(item)
        flushed.set()

    sub = source.pipe(ops.coalesce_text(window=0.01)).subscribe(collect)
    source.on_next(ev.reply("threaded "))
    source.on_next(ev.reply("timer"))
    assert flushed.wait(5)
    source.on_next(ev.custom())
    sub.dispose()
    assert [getattr(e, "text", None) for e in out] == ["threaded timer", None]


def test_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="window"):
        ops.coalesce_text(window=0)
    with pytest.raises(ValueError, match="max_chars"):
        ops.coalesce_text(max_chars=0)
    with pytest.raises(TypeError, match="max_chars"):
        ops.coalesce_text(max_chars=1.5)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_real_run_keeps_its_text_on_the_asyncio_scheduler() -> None:
    words = [f"w{i} " for i in range(40)]

    async def talk(state: dict[str, Any], ctx: rs.RunContext) -> None:
        async with ctx.stream_reply() as message:
            for i, word in enumerate(words):
                await message.write(word)
                if i % 10 == 9:
                    await anyio.sleep(0.03)
        await ctx.custom("after")

    g = rs.StateGraph(name="talker")
    g.add_node("talk", talk)
    g.add_edge(rs.START, "talk")
    done = anyio.Event()
    out: list[rs.Event] = []
    raw: list[rs.Event] = []
    scheduler = AsyncIOScheduler(asyncio.get_running_loop())
    g.compile().run({}).pipe(
        rx_ops.do_action(raw.append),
        ops.coalesce_text(window=0.02),
    ).subscribe(out.append, on_completed=done.set, scheduler=scheduler)
    with anyio.fail_after(5):
        await done.wait()
    replies = [e for e in out if isinstance(e, rs.AssistantReply)]
    assert "".join(e.text for e in replies) == "".join(words)
    assert replies[-1].done
    assert len(replies) < len([e for e in raw if isinstance(e, rs.AssistantReply)])
    assert [e.seq for e in out] == sorted(e.seq for e in out)
    assert out[-1] == raw[-1]


# --- the lossless property --------------------------------------------------------

_KEYS = [("reply", "a"), ("reply", "b"), ("thought", "a")]

# Mostly chunks (of few messages, so runs of one message are common), some
# other events, small gaps against windows of 1..40 ticks.
_items = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=12),  # ticks since the previous item
        st.integers(min_value=0, max_value=7).flatmap(
            lambda k: (
                st.just(None)
                if k == 0
                else st.tuples(
                    st.just(_KEYS[k % 3]),
                    st.text(alphabet="xyz", max_size=4),
                    st.sampled_from([False, False, False, True]),  # done
                )
            )
        ),
    ),
    max_size=40,
)


def _build(items: list[tuple[int, Any]]) -> tuple[list[tuple[float, Any]], list[Any]]:
    ev = Events()
    arrivals, events, now = [], [], 210.0
    for delta, what in items:
        now += delta
        if what is None:
            event: Any = ev.custom() if len(events) % 2 else ev.start(f"c{len(events)}")
        else:
            (kind, message_id), text, done = what
            make = ev.reply if kind == "reply" else ev.thought
            event = make(text, message_id, done=done)
        arrivals.append((now, event))
        events.append(event)
    return arrivals, events


def _is_text(e: Any) -> bool:
    return isinstance(e, (rs.AssistantReply, rs.PlannerThought))


def _key(e: Any) -> tuple[type, str]:
    return type(e), e.message_id


@settings(max_examples=300, deadline=None)
@given(
    items=_items,
    window=st.integers(min_value=1, max_value=40),
    max_chars=st.integers(min_value=1, max_value=12),
    ends_with_error=st.booleans(),
)
def test_coalescing_is_lossless(
    items: list[tuple[int, Any]], window: int, max_chars: int, ends_with_error: bool
) -> None:
    arrivals, events = _build(items)
    end_time = (arrivals[-1][0] if arrivals else 210.0) + 5
    boom = RuntimeError("end")
    end = on_error(end_time, boom) if ends_with_error else on_completed(end_time)
    got = run_hot(
        ops.coalesce_text(window=window, max_chars=max_chars),
        *[on_next(t, e) for t, e in arrivals],
        end,
        disposed=10_000,
    )
    out = values(got)
    when = {e.seq: t for t, e in arrivals}

    # Per message: the same text; other events: the same objects, in order.
    def texts(evs: list[Any]) -> dict[tuple[type, str], str]:
        joined: dict[tuple[type, str], str] = {}
        for e in evs:
            if _is_text(e):
                joined[_key(e)] = joined.get(_key(e), "") + e.text
        return joined

    assert texts(out) == texts(events)
    assert [e for e in out if not _is_text(e)] == [e for e in events if not _is_text(e)]
    assert sum(e.done for e in out if _is_text(e)) == sum(e.done for e in events if _is_text(e))

    # Each output event stands for a contiguous run of input events that ends
    # at its own seq: one other event, or chunks of one message merged.
    *emitted, (_, last_kind, _) = timeline(got)
    assert last_kind == ("E" if ends_with_error else "C")
    previous = -1
    for time, kind, event in emitted:
        assert kind == "N"
        segment = [e for e in events if previous < e.seq <= event.seq]
        assert segment, "output seqs must strictly increase"
        previous = event.seq
        if not _is_text(event):
            assert segment == [event]
            assert time == when[event.seq]
            continue
        assert all(_is_text(e) and _key(e) == _key(event) for e in segment)
        assert event == attrs.evolve(segment[-1], text="".join(e.text for e in segment))
        assert not any(e.done for e in segment[:-1]), "a done chunk ends its event"
        assert sum(len(e.text) for e in segment[:-1]) < max_chars
        first, last = when[segment[0].seq], when[segment[-1].seq]
        assert last - first <= window
        # Emitted exactly when it must be: at once when done or full, else at
        # the end of its window or when the next item (or the end) arrives.
        follower = next((e for e in events if e.seq == event.seq + 1), None)
        follows_at = end_time if follower is None else when[follower.seq]
        if segment[-1].done or sum(len(e.text) for e in segment) >= max_chars:
            assert time == last
        else:
            assert time == min(first + window, follows_at)
            joinable = follower is not None and _is_text(follower) and _key(follower) == _key(event)
            assert not (joinable and follows_at <= first + window), "must merge that chunk"
    assert previous == (events[-1].seq if events else -1), "nothing held back at the end"


def test_an_observer_that_disposes_on_a_flushed_event_gets_nothing_more() -> None:
    ev = Events()
    a1, note, a2 = ev.reply("a"), ev.custom(), ev.reply("b", "m2")
    got: list[Any] = []
    source: Subject[Any] = Subject()
    scheduler = RecordingScheduler()

    def on_item(item: Any) -> None:
        got.append(item)
        subscription.dispose()

    subscription = source.pipe(ops.coalesce_text(window=10)).subscribe(on_item, scheduler=scheduler)
    source.on_next(a1)
    source.on_next(note)  # flushes a1; the observer disposes; note is not emitted
    source.on_next(a2)
    scheduler.advance_to(100)
    assert got == [a1]
    assert all(d.is_disposed for _, d in scheduler.timers)
