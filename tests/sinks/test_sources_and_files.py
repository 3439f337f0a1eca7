"""JsonlSink, replay_jsonl, from_async_iterable and ConsoleSink."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from rich.console import Console

import runstream as rs
from _support.invariants import check_invariants, settle
from runstream._flow import Flow, subscribing

pytestmark = pytest.mark.anyio


def chatty() -> rs.CompiledGraph:
    async def node(state: dict[str, Any], ctx: rs.RunContext) -> dict[str, Any]:
        await ctx.think("plan")
        async with ctx.tool("search", {"q": "tides", "n": [1, 2]}) as call:
            await call.update(progress=0.5, message="half")
            call.result = {"hits": ["moon"]}
        async with ctx.stream_reply() as m:
            for word in ("The ", "moon."):
                await m.write(word)
        await ctx.usage("m", 5, 2)
        return {"answer": "The moon."}

    g = rs.StateGraph(name="chatty")
    g.add_node("n", node)
    g.add_edge(rs.START, "n")
    return g.compile()


async def test_jsonl_round_trip_gives_equal_events(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    memory = rs.MemorySink[rs.Event]()
    await rs.drain(chatty().run({}, thread_id="t"), memory, rs.JsonlSink(path))
    lines = path.read_bytes().splitlines()
    assert len(lines) == len(memory.items)
    replayed = rs.MemorySink[rs.Event]()
    await rs.drain(rs.replay_jsonl(path), replayed)
    assert replayed.items == memory.items
    # cold: a second subscription reads the file again
    again = rs.MemorySink[rs.Event]()
    await rs.drain(rs.replay_jsonl(path), again)
    assert again.items == memory.items
    check_invariants(again.items)


async def test_replay_names_the_file_and_line_of_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    await rs.drain(chatty().run({}), rs.JsonlSink(path))
    lines = path.read_text().splitlines()
    lines.insert(2, "")  # blank lines are skipped
    lines.insert(3, '{"type": "nope"}')
    path.write_text("\n".join(lines) + "\n")
    sink = rs.MemorySink[rs.Event]()
    with pytest.raises(rs.DecodeError, match=r"bad\.jsonl:4: unknown event type 'nope'"):
        await rs.drain(rs.replay_jsonl(path), sink)
    assert len(sink.items) == 2
    assert sink.closed


def test_replay_of_a_missing_file_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.jsonl"):
        rs.replay_jsonl(tmp_path / "missing.jsonl")


def test_jsonl_sink_reports_an_unwritable_path(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="no-such-dir"):
        rs.JsonlSink(tmp_path / "no-such-dir" / "x.jsonl")


async def test_from_async_iterable_is_cold_and_complete() -> None:
    calls: list[int] = []

    async def numbers() -> AsyncIterator[int]:
        calls.append(1)
        for i in range(5):
            yield i

    source = rs.from_async_iterable(numbers)
    await anyio.sleep(0.01)
    assert calls == []
    first, second = rs.MemorySink[int](), rs.MemorySink[int]()
    await rs.drain(source, first)
    await rs.drain(source, second)
    assert first.items == second.items == [0, 1, 2, 3, 4]
    assert calls == [1, 1]


async def test_from_async_iterable_errors_reach_the_consumer() -> None:
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise LookupError("gone")

    sink = rs.MemorySink[int]()
    with pytest.raises(LookupError, match="gone"):
        await rs.drain(rs.from_async_iterable(broken), sink)
    assert sink.items == [1]
    assert sink.closed


async def test_from_async_iterable_disposal_runs_the_generators_finally() -> None:
    cleaned = anyio.Event()

    async def endless() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
                await anyio.lowlevel.checkpoint()
        finally:
            cleaned.set()

    att = rs.attach(rs.from_async_iterable(endless), rs.MemorySink[int]())
    await anyio.sleep(0.02)
    att.dispose()
    await att.wait()
    await settle()
    assert cleaned.is_set()


async def test_from_async_iterable_waits_for_demand_and_stops_on_cancel() -> None:
    produced: list[int] = []

    async def numbers() -> AsyncIterator[int]:
        for i in range(10_000):
            produced.append(i)
            yield i

    slow: list[int] = []

    async def consume(i: int) -> None:
        await anyio.sleep(0.0005)
        slow.append(i)

    att = rs.attach(rs.from_async_iterable(numbers), rs.CallbackSink(consume), buffer=16)
    await anyio.sleep(0.05)
    assert len(produced) - len(slow) <= 32  # the generator waits for the slow sink
    att.cancel()
    (stats,) = await att.wait()
    assert slow == list(range(len(slow)))
    assert stats.delivered == len(slow) < 10_000
    await settle()


async def test_a_request_to_cancel_before_the_first_item_is_honoured() -> None:
    async def numbers() -> AsyncIterator[int]:
        for i in range(100):
            yield i
            await anyio.sleep(0.001)

    flow = Flow()
    done = anyio.Event()
    got: list[int] = []
    with subscribing(flow):
        rs.from_async_iterable(numbers).subscribe(got.append, on_completed=done.set)
    flow.request_cancel()
    with anyio.fail_after(5):
        await done.wait()
    assert len(got) < 100


def test_from_async_iterable_needs_a_factory() -> None:
    with pytest.raises(TypeError, match="async generator function"):
        rs.from_async_iterable([1, 2, 3])  # type: ignore[arg-type]


async def test_console_sink_renders_the_run_and_a_summary() -> None:
    out = io.StringIO()
    console = Console(file=out, width=100, color_system=None)
    await rs.drain(chatty().run({}), rs.ConsoleSink(console))
    text = out.getvalue()
    assert "The moon." in text
    assert "search" in text
    assert "5 in" in text  # the usage summary
    assert "2 out" in text


async def test_a_source_piped_through_an_operator_can_be_iterated() -> None:
    async def numbers() -> AsyncIterator[Any]:
        for i in range(5):
            yield i
            yield str(i)

    got = [i async for i in rs.from_async_iterable(numbers).pipe(rs.ops.of_type(int))]
    assert got == [0, 1, 2, 3, 4]


# --- issue 8: `async for` on every source, replay speed ----------------------------


async def test_async_for_over_from_async_iterable_and_break_closes_the_generator() -> None:
    produced: list[int] = []
    closed = anyio.Event()

    async def endless() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                produced.append(i)
                yield i
                i += 1
        finally:
            closed.set()

    got: list[int] = []
    async for i in rs.from_async_iterable(endless):
        got.append(i)
        if i == 3:
            break
    assert got == [0, 1, 2, 3]
    with anyio.fail_after(5):
        await closed.wait()  # the break disposed the subscription: the generator was closed
    assert len(produced) <= 2 * 1024  # the buffer is bounded: the generator waited
    await settle()


async def test_async_for_over_from_async_iterable_raises_its_error() -> None:
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise LookupError("gone")

    got: list[int] = []

    async def iterate() -> None:
        async for i in rs.from_async_iterable(broken):
            got.append(i)

    with pytest.raises(LookupError, match="gone"):
        await iterate()
    assert got == [1]


def _open_handles(path: Path) -> int:
    """How many file descriptors of this process point at `path` (Linux)."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            if Path(os.readlink(fd)) == path:
                count += 1
        except OSError:
            continue  # closed meanwhile
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
async def test_async_for_over_replay_jsonl_and_break_closes_the_file(tmp_path: Path) -> None:
    path = (tmp_path / "run.jsonl").resolve()
    # More events than the loop's buffer holds: the replay waits with the file open
    # until the loop takes more, so only disposing it can close the file.
    recorded = timed_recording(path, [1000.0 + i for i in range(5000)])
    assert [e async for e in rs.replay_jsonl(path)] == recorded
    assert _open_handles(path) == 0
    async for event in rs.replay_jsonl(path):
        assert event == recorded[0]
        assert _open_handles(path) == 1  # the replay is reading it
        break
    with anyio.fail_after(5):
        while _open_handles(path):  # the break disposed the replay, which closes the file
            await anyio.lowlevel.checkpoint()
    await settle()


def timed_recording(path: Path, times: list[float]) -> list[rs.Event]:
    run = rs.RunInfo(run_id="r", agent="tiny")
    events: list[rs.Event] = [
        rs.Custom(run=run, seq=i, ts=ts, name="tick", data=i) for i, ts in enumerate(times)
    ]
    path.write_bytes(b"".join(rs.codec.dumps(e) + b"\n" for e in events))
    return events


@pytest.mark.parametrize(
    ("speed", "max_pause", "pauses"),
    [
        (None, None, []),
        (0, None, []),
        (1, None, [0.5, 3.0, 0.25]),
        (2, None, [0.25, 1.5, 0.125]),
        (0.5, 2.0, [1.0, 2.0, 0.5]),
    ],
)
async def test_replay_speed_paces_events_by_their_recorded_gaps(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    speed: float | None,
    max_pause: float | None,
    pauses: list[float],
) -> None:
    path = tmp_path / "timed.jsonl"
    # An event recorded earlier than the one before it (a parallel node) is not waited for.
    events = timed_recording(path, [100.0, 100.5, 103.5, 103.0, 103.75])
    log: list[float | str] = []

    async def fake_sleep(seconds: float) -> None:
        log.append(seconds)

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    got: list[rs.Event] = []
    done = anyio.Event()

    def note(event: rs.Event) -> None:
        got.append(event)
        log.append(f"event {event.seq}")

    # Subscribed with a callback, so the log shows each pause before its event.
    rs.replay_jsonl(path, speed=speed, max_pause=max_pause).subscribe(note, on_completed=done.set)
    with anyio.fail_after(5):
        await done.wait()
    assert got == events
    assert [x for x in log if not isinstance(x, str)] == pauses
    if pauses:
        assert log[:4] == ["event 0", pauses[0], "event 1", pauses[1]]


@pytest.mark.parametrize(
    "kwargs", [{"speed": -1}, {"speed": float("nan")}, {"speed": float("inf")}, {"max_pause": 0}]
)
def test_replay_refuses_a_bad_speed_at_once(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    path = tmp_path / "timed.jsonl"
    timed_recording(path, [1.0, 2.0])
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        rs.replay_jsonl(path, **kwargs)


async def test_nothing_is_delivered_after_disposing_from_inside_on_next() -> None:
    closed = anyio.Event()

    async def eager() -> AsyncIterator[int]:
        try:
            for i in range(100):
                yield i  # never waits: only the disposal can stop it in time
        finally:
            closed.set()

    got: list[int] = []

    def on_next(i: int) -> None:
        got.append(i)
        if i == 2:
            subscription.dispose()

    subscription = rs.from_async_iterable(eager).subscribe(on_next)
    with anyio.fail_after(5):
        await closed.wait()
    assert got == [0, 1, 2]
    await settle()
