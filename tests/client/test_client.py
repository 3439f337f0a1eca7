"""`RemoteRuns` against a real uvicorn server: requests, event streams, reconnection, errors."""

from __future__ import annotations

import importlib
import json
import re
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio
import httpx
import pytest
from reactivex import Observable
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import runstream as rs
from _support.invariants import check_invariants, settle
from _support.serving import refusing_port, serving
from runstream import ops
from runstream.client import RemoteError, RemoteRuns, _SSEParser
from runstream.codec import dumps, loads
from runstream.server import create_app

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(10)]


# --- graphs -----------------------------------------------------------------------


def ticker(n: int, *, delay: float = 0.0, hold: anyio.Event | None = None) -> rs.CompiledGraph:
    """Replies "hello", emits `n` `Custom("tick", i)`, then waits on `hold` if given."""

    async def tick(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.reply("hello")
        for i in range(n):
            await ctx.custom("tick", i)
            if delay:
                await anyio.sleep(delay)
        if hold is not None:
            await hold.wait()

    g = rs.StateGraph(name="ticker")
    g.add_node("tick", tick)
    g.add_edge(rs.START, "tick")
    return g.compile()


def researcher() -> rs.CompiledGraph:
    """An agent with two tools and a child agent, like `runstream demo`."""
    from runstream._demo import build_demo_agent

    return build_demo_agent(delay=0.001)


async def collect(source: Observable[rs.Event]) -> list[rs.Event]:
    sink: rs.MemorySink[rs.Event] = rs.MemorySink()
    await rs.drain(source, sink)
    assert sink.closed
    return sink.items


async def read_raw(url: str, run_id: str, headers: dict[str, str] | None = None) -> list[rs.Event]:
    """A second reader, written from the SSE spec: frames end at a blank line."""
    events = []
    async with (
        httpx.AsyncClient(base_url=url) as client,
        client.stream("GET", f"/runs/{run_id}/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        body = (await response.aread()).decode()
    for block in body.split("\n\n"):
        data = [line[6:] for line in block.split("\n") if line.startswith("data: ")]
        if data:
            events.append(loads("\n".join(data)))
    return events


# --- a real server ----------------------------------------------------------------


async def test_start_events_and_status_on_a_real_server() -> None:
    app = create_app({"researcher": researcher()})
    async with serving(app) as url, RemoteRuns(url) as runs:
        run_id = await runs.start("researcher", "Is solar cheaper?", thread_id="t-1")
        events = await collect(runs.events(run_id))
        check_invariants(events)
        assert {e.run_id for e in events if e.parent_run_id is None} == {run_id}
        assert {e.thread_id for e in events} == {"t-1"}
        last = events[-1]
        assert isinstance(last, rs.Workflow)
        assert last.phase is rs.Phase.COMPLETED
        assert "".join(
            e.text for e in events if isinstance(e, rs.AssistantReply) and e.parent_run_id is None
        ).startswith("Yes, in most of the world.")
        # The codec's events, equal to what a second, independent reader gets.
        assert events == await read_raw(url, run_id)
        # A second subscription is a second stream of the same run: equal again.
        assert await collect(runs.events(run_id)) == events
        status = await runs.status(run_id)
        assert status == {
            "run_id": run_id,
            "graph": "researcher",
            "status": "completed",
            "events": len(events),
            "thread_id": "t-1",
            "oldest": 0,
        }
    await settle()


async def test_events_after_a_position_and_through_a_profile() -> None:
    app = create_app({"researcher": researcher()})
    async with serving(app) as url, RemoteRuns(url) as runs:
        run_id = await runs.start("researcher", "why?")
        everything = await collect(runs.events(run_id))
        assert await collect(runs.events(run_id, after=9)) == everything[10:]
        assert await collect(runs.events(run_id, after=len(everything) - 2)) == everything[-1:]
        chat = await collect(runs.events(run_id, profile="user_chat"))
        assert not [e for e in chat if isinstance(e, rs.PlannerThought | rs.Usage)]
        assert [e for e in chat if isinstance(e, rs.Workflow)] == [everything[-1]]
        metrics = await collect(runs.events(run_id, profile=ops.Profile.METRICS))
        assert metrics == [e for e in everything if isinstance(e, rs.Usage | rs.Workflow)]
        with pytest.raises(ValueError, match="unknown profile 'chatty'"):
            runs.events(run_id, profile="chatty")
        with pytest.raises(ValueError, match="built-in profiles only"):
            runs.events(run_id, profile=ops.Profile(hide_thoughts=True))


async def test_operators_and_sinks_work_on_a_remote_stream() -> None:
    app = create_app({"ticker": ticker(5)})
    async with serving(app) as url, RemoteRuns(url) as runs:
        run_id = await runs.start("ticker", {})
        ticks: rs.MemorySink[rs.Custom] = rs.MemorySink()
        await rs.drain(runs.events(run_id).pipe(ops.of_type(rs.Custom)), ticks)
        assert [(e.name, e.data) for e in ticks.items] == [("tick", i) for i in range(5)]
        memory: rs.MemorySink[rs.Event] = rs.MemorySink()
        seen: list[rs.Event] = []
        await rs.drain(runs.events(run_id), memory, rs.CallbackSink(seen.append))
        assert seen == memory.items
        assert [e for e in memory.items if isinstance(e, rs.Custom)] == ticks.items
    check_invariants(memory.items)


async def test_live_events_arrive_while_the_run_goes_on_and_cancel_ends_it() -> None:
    hold = anyio.Event()
    app = create_app({"ticker": ticker(3, hold=hold)})
    async with serving(app) as url, RemoteRuns(url) as runs:
        run_id = await runs.start("ticker", {})
        got: list[rs.Event] = []
        three_ticks = anyio.Event()

        def note(event: rs.Event) -> None:
            got.append(event)
            if isinstance(event, rs.Custom) and event.data == 2:
                three_ticks.set()

        async with anyio.create_task_group() as tg:

            async def follow() -> None:
                await rs.drain(runs.events(run_id), rs.CallbackSink(note))

            tg.start_soon(follow)
            await three_ticks.wait()  # live: the run is still waiting on `hold`
            assert (await runs.status(run_id))["status"] == "running"
            await runs.cancel(run_id)
        last = got[-1]
        assert isinstance(last, rs.Workflow)
        assert last.phase is rs.Phase.CANCELED
        assert (await runs.status(run_id))["status"] == "canceled"
        await runs.cancel(run_id)  # cancelling an ended run does nothing
    check_invariants(got)


async def test_disposing_the_subscription_closes_the_stream_but_not_the_run() -> None:
    hold = anyio.Event()
    app = create_app({"ticker": ticker(1, hold=hold)})
    async with serving(app) as url, RemoteRuns(url) as runs:
        run_id = await runs.start("ticker", {})
        first = anyio.Event()
        got: list[rs.Event] = []

        def note(event: rs.Event) -> None:
            got.append(event)
            first.set()

        att = rs.attach(runs.events(run_id), rs.CallbackSink(note))
        await first.wait()
        att.dispose()
        await att.wait_closed()
        assert (await runs.status(run_id))["status"] == "running"
        hold.set()
        rest = await collect(runs.events(run_id, after=got[-1].seq))
        assert [e.seq for e in got + rest] == list(range(len(got) + len(rest)))
        assert (await runs.status(run_id))["status"] == "completed"


async def test_cancelling_the_attachment_stops_following_but_not_the_run() -> None:
    hold = anyio.Event()
    app = create_app({"ticker": ticker(1, hold=hold)})
    async with serving(app) as url, RemoteRuns(url) as runs:
        run_id = await runs.start("ticker", {})
        first = anyio.Event()
        sink: rs.MemorySink[rs.Event] = rs.MemorySink()
        att = rs.attach(runs.events(run_id), sink, rs.CallbackSink(lambda e: first.set()))
        await first.wait()
        att.cancel()
        with anyio.fail_after(5):
            await att.wait()
        assert sink.closed
        assert not [e for e in sink.items if isinstance(e, rs.Workflow) and e.phase.is_terminal]
        assert (await runs.status(run_id))["status"] == "running"
        hold.set()


async def test_requests_refused_by_the_server_raise_remote_error_with_its_detail() -> None:
    app = create_app({"ticker": ticker(1), "researcher": researcher()})
    async with serving(app) as url, RemoteRuns(url) as runs:
        with pytest.raises(RemoteError) as info:
            await runs.start("nope", {})
        assert info.value.status == 404
        assert info.value.detail == "unknown graph 'nope'; graphs: researcher, ticker"
        assert str(info.value) == "HTTP 404: unknown graph 'nope'; graphs: researcher, ticker"
        with pytest.raises(RemoteError) as info:
            await runs.start("researcher", [1, 2])
        assert info.value.status == 422
        assert info.value.detail.startswith("field 'input': ")
        for call in (runs.status, runs.cancel):
            with pytest.raises(RemoteError) as info:
                await call("no-such-run")
            assert info.value.status == 404
            assert info.value.detail.startswith("unknown run 'no-such-run'")
        with pytest.raises(RemoteError) as info:
            await collect(runs.events("no-such-run"))
        assert info.value.status == 404
        assert info.value.detail.startswith("unknown run 'no-such-run'")


async def test_a_bearer_token_is_sent_and_runs_are_kept_apart() -> None:
    app = create_app({"ticker": ticker(2)}, auth={"tok-a": "alice", "tok-b": "bob"})
    async with (
        serving(app) as url,
        RemoteRuns(url, token="tok-a") as alice,
        RemoteRuns(url, token="tok-b") as bob,
        RemoteRuns(url) as nobody,
    ):
        run_id = await alice.start("ticker", {})
        events = await collect(alice.events(run_id))
        assert events == await read_raw(url, run_id, {"Authorization": "Bearer tok-a"})
        with pytest.raises(RemoteError) as info:
            await collect(bob.events(run_id))
        assert info.value.status == 404
        for call in (nobody.start("ticker", {}), nobody.status(run_id)):
            with pytest.raises(RemoteError) as info:
                await call
            assert info.value.status == 401
        with pytest.raises(RemoteError) as info:
            await collect(nobody.events(run_id))
        assert info.value.status == 401


async def test_an_unreachable_server_is_a_remote_error() -> None:
    with refusing_port() as port:
        await _unreachable(f"http://127.0.0.1:{port}")


async def _unreachable(url: str) -> None:
    async with RemoteRuns(url, retries=2, backoff=0.01) as runs:
        with pytest.raises(RemoteError) as info:
            await runs.start("ticker", {})
        assert info.value.status is None
        assert "ConnectError" in info.value.detail
        with pytest.raises(RemoteError) as info:
            await collect(runs.events("r"))
        assert info.value.status is None
        assert "gave up after 3 failed attempts in a row" in info.value.detail
        assert "ConnectError" in info.value.detail


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="retries"):
        RemoteRuns("http://x", retries=-1)
    with pytest.raises(ValueError, match="backoff"):
        RemoteRuns("http://x", backoff=float("nan"))
    with pytest.raises(ValueError, match="timeout"):
        RemoteRuns("http://x", timeout=0)


# --- servers that misbehave -------------------------------------------------------

RUN = rs.RunInfo(run_id="r-1", agent="fake")


def fake_events(n: int) -> list[rs.Event]:
    """`n` events of one root run: ticks, then the terminal event."""
    events: list[rs.Event] = [
        rs.Custom(run=RUN, seq=i, ts=1000.0 + i, name="tick", data={"i": i, "text": "a\nb"})
        for i in range(n - 1)
    ]
    events.append(rs.Workflow(run=RUN, seq=n - 1, ts=1000.0 + n, phase=rs.Phase.COMPLETED))
    return events


class Dropped(Exception):
    """Raised by a test server to drop a connection mid-response."""


def sse_app(
    handler: Callable[[Request, int], Response],
) -> tuple[Starlette, list[dict[str, str]]]:
    """An app whose `/runs/{run_id}/events` is `handler(request, attempt)`.

    Returns the app and the list of every request's headers.
    """
    seen: list[dict[str, str]] = []

    async def events(request: Request) -> Response:
        seen.append(dict(request.headers))
        return handler(request, len(seen))

    return Starlette(routes=[Route("/runs/{run_id}/events", events)]), seen


def frame(event: rs.Event, *, newline: str = "\n") -> bytes:
    # Multi-line data: the JSON spread over one `data:` line per key.
    data = json.dumps(json.loads(dumps(event)), indent=1)
    lines = [f"id: {event.seq}", f"event: {event.type}"]
    lines += [f"data: {line}" for line in data.split("\n")]
    return (newline.join(lines) + newline + newline).encode()


def stream(chunks: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(chunks, media_type="text/event-stream")


def after_of(request: Request) -> int:
    last = request.headers.get("last-event-id")
    return -1 if last is None else int(last)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
async def test_dropped_connections_are_resumed_with_last_event_id(newline: str) -> None:
    n, k = 23, 5
    events = fake_events(n)

    def handler(request: Request, attempt: int) -> Response:
        start = after_of(request) + 1

        async def body() -> AsyncIterator[bytes]:
            yield f"retry: 10{newline}: hello{newline}{newline}".encode()
            for sent, event in enumerate(events[start:], start=1):
                yield frame(event, newline=newline)
                if sent == k and event.seq < n - 1:
                    if attempt % 2:
                        raise Dropped()  # the connection breaks mid-response
                    return  # the response ends before the terminal event
                yield f": keep-alive{newline}{newline}".encode()

        return stream(body())

    app, seen = sse_app(handler)
    async with serving(app) as url, RemoteRuns(url, retries=1, backoff=0.001) as runs:
        got = await collect(runs.events("r-1"))
    assert got == events
    assert [h.get("last-event-id") for h in seen] == [None, "4", "9", "14", "19"]
    assert all(h["accept"] == "text/event-stream" for h in seen)


async def test_events_repeated_by_a_server_are_delivered_once() -> None:
    events = fake_events(6)

    def handler(request: Request, attempt: int) -> Response:
        async def body() -> AsyncIterator[bytes]:
            # Ignores Last-Event-ID: always from the start, dropping after 2 more.
            for event in events[: attempt * 2]:
                yield frame(event)

        return stream(body())

    app, seen = sse_app(handler)
    async with serving(app) as url, RemoteRuns(url, backoff=0.001) as runs:
        assert await collect(runs.events("r-1")) == events
    assert len(seen) == 3


async def test_a_stream_that_resumes_after_the_given_position() -> None:
    events = fake_events(8)

    def handler(request: Request, attempt: int) -> Response:
        async def body() -> AsyncIterator[bytes]:
            for event in events[after_of(request) + 1 :]:
                yield frame(event)

        return stream(body())

    app, seen = sse_app(handler)
    async with serving(app) as url, RemoteRuns(url) as runs:
        assert await collect(runs.events("r-1", after=4)) == events[5:]
    assert seen[0]["last-event-id"] == "4"


@pytest.mark.parametrize("failure", ["503", "empty", "comments only"])
async def test_reconnection_gives_up_after_the_retries(failure: str) -> None:
    def handler(request: Request, attempt: int) -> Response:
        if failure == "503":
            return JSONResponse({"detail": "busy"}, status_code=503)

        async def body() -> AsyncIterator[bytes]:
            if failure == "comments only":
                yield b"retry: 10\n\n: keep-alive\n\n"

        return stream(body())

    app, seen = sse_app(handler)
    async with serving(app) as url, RemoteRuns(url, retries=3, backoff=0.001) as runs:
        with pytest.raises(RemoteError) as info:
            await collect(runs.events("r-1"))
    assert len(seen) == 4  # the first attempt and 3 retries
    assert "gave up after 4 failed attempts in a row" in info.value.detail
    if failure == "503":
        assert info.value.status == 503
        assert info.value.detail.endswith("last: HTTP 503: busy")
    else:
        assert info.value.status is None
        assert info.value.detail.endswith("the stream ended before the run's last event")


async def test_no_retries_means_one_attempt() -> None:
    app, seen = sse_app(lambda request, attempt: stream(aiter_of([frame(fake_events(3)[0])])))
    async with serving(app) as url, RemoteRuns(url, retries=0) as runs:
        got: list[rs.Event] = []
        with pytest.raises(RemoteError, match="gave up after 1 failed attempt in a row"):
            await rs.drain(runs.events("r-1"), rs.CallbackSink(got.append))
    assert len(seen) == 1
    assert got == fake_events(3)[:1]  # what came before the error still arrives


async def test_progress_resets_the_count_of_failures() -> None:
    events = fake_events(12)

    def handler(request: Request, attempt: int) -> Response:
        # One new event per connection, then the stream ends: each attempt progresses.
        return stream(aiter_of([frame(events[after_of(request) + 1])]))

    app, seen = sse_app(handler)
    async with serving(app) as url, RemoteRuns(url, retries=1, backoff=0.001) as runs:
        assert await collect(runs.events("r-1")) == events
    assert len(seen) == 12


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
async def test_refusals_are_not_retried(status: int) -> None:
    app, seen = sse_app(
        lambda request, attempt: JSONResponse({"detail": f"no ({status})"}, status_code=status)
    )
    async with serving(app) as url, RemoteRuns(url, backoff=0.001) as runs:
        with pytest.raises(RemoteError) as info:
            await collect(runs.events("r-1"))
    assert (info.value.status, info.value.detail) == (status, f"no ({status})")
    assert len(seen) == 1


async def test_a_response_that_is_not_an_event_stream_is_an_error() -> None:
    app, seen = sse_app(lambda request, attempt: Response("<html>", media_type="text/html"))
    async with serving(app) as url, RemoteRuns(url) as runs:
        with pytest.raises(RemoteError, match="expected an event stream, got text/html"):
            await collect(runs.events("r-1"))
    assert len(seen) == 1


async def test_an_undecodable_event_is_a_decode_error() -> None:
    bad = b'id: 1\ndata: {"type": "mystery"}\n\n'
    app, _ = sse_app(lambda request, attempt: stream(aiter_of([frame(fake_events(3)[0]), bad])))
    async with serving(app) as url, RemoteRuns(url) as runs:
        with pytest.raises(rs.DecodeError, match=r"run r-1, the event after seq 0: .*mystery"):
            await collect(runs.events("r-1"))


async def test_the_token_goes_with_every_reconnection_and_disposing_closes_the_stream() -> None:
    events = fake_events(4)
    closed = anyio.Event()

    def handler(request: Request, attempt: int) -> Response:
        async def body() -> AsyncIterator[bytes]:
            start = after_of(request) + 1
            if attempt == 1:
                yield frame(events[0])
                return
            try:
                yield frame(events[start])
                await anyio.sleep(30)  # a live run that has nothing to say for a while
            finally:
                closed.set()

        return stream(body())

    app, seen = sse_app(handler)
    async with serving(app) as url, RemoteRuns(url, token="s3cret", backoff=0.001) as runs:
        second = anyio.Event()
        got: list[rs.Event] = []

        def note(event: rs.Event) -> None:
            got.append(event)
            if len(got) == 2:
                second.set()

        att = rs.attach(runs.events("r-1"), rs.CallbackSink(note))
        await second.wait()
        att.dispose()
        await att.wait_closed()
        with anyio.fail_after(5):
            await closed.wait()  # the server saw the client go away
    assert got == events[:2]
    assert [h["authorization"] for h in seen] == ["Bearer s3cret", "Bearer s3cret"]
    assert seen[1]["last-event-id"] == "0"


async def aiter_of(items: Sequence[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


# --- the SSE parser ---------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_the_parser_reads_frames_split_at_any_byte(newline: str) -> None:
    nl = newline
    text = (
        f"retry: 1000{nl}{nl}: keep-alive{nl}{nl}"
        f'id: 1{nl}event: custom{nl}data: {{"a":{nl}data:  1}}{nl}{nl}'
        f"event: nothing{nl}{nl}"  # no data: not dispatched
        f"data{nl}data: x{nl}unknown: y{nl}{nl}"  # a field without a colon; the id carries on
        f"id: 7{nl}data:z{nl}{nl}"
    ).encode()
    expected = [("1", b'{"a":\n 1}'), ("1", b"\nx"), ("7", b"z")]
    for cut in range(len(text) + 1):
        for second_cut in (cut, min(cut + 1, len(text)), min(cut + 2, len(text))):
            parser = _SSEParser()
            frames = parser.feed(text[:cut]) + parser.feed(text[cut:second_cut])
            frames += parser.feed(text[second_cut:])
            assert frames == expected, (cut, second_cut)
    one_by_one = _SSEParser()
    assert [f for i in range(len(text)) for f in one_by_one.feed(text[i : i + 1])] == expected


async def test_a_failed_remote_run_raises_run_failed_like_a_local_one() -> None:
    async def boom(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.custom("before")
        raise ValueError("remote boom")

    g = rs.StateGraph(name="boom")
    g.add_node("boom", boom)
    g.add_edge(rs.START, "boom")
    async with serving(create_app({"boom": g.compile()})) as base, RemoteRuns(base) as runs:
        run_id = await runs.start("boom", None)
        sink = rs.MemorySink[rs.Event]()
        with pytest.raises(rs.RunFailed, match="remote boom") as info:
            await rs.drain(runs.events(run_id), sink)
        assert info.value.error.type == "ValueError"
        last = sink.items[-1]
        assert isinstance(last, rs.Workflow)
        assert last.phase is rs.Phase.FAILED
        assert sink.closed
    await settle()


# --- issue 8: resuming at the end, async for, lost runs, the extra -----------------


async def test_resuming_at_or_past_the_end_of_an_ended_run_completes_with_nothing() -> None:
    async def boom(state: dict[str, Any], ctx: rs.RunContext) -> None:
        raise ValueError("boom")

    g = rs.StateGraph(name="boom")
    g.add_node("boom", boom)
    g.add_edge(rs.START, "boom")
    app = create_app({"ticker": ticker(2), "boom": g.compile()})
    async with serving(app) as url, RemoteRuns(url, retries=0) as runs:
        run_id = await runs.start("ticker", {})
        everything = await collect(runs.events(run_id))
        last = everything[-1].seq
        for after in (last, last + 5):
            assert await collect(runs.events(run_id, after=after)) == []
            assert [e async for e in runs.events(run_id, after=after)] == []
        # A failed run too: nothing follows, so there is no RunFailed to raise.
        failed_id = await runs.start("boom", None)
        with pytest.raises(rs.RunFailed):
            await collect(runs.events(failed_id))
        assert (await runs.status(failed_id))["status"] == "failed"
        failed_last = (await runs.status(failed_id))["events"] - 1
        assert await collect(runs.events(failed_id, after=failed_last)) == []
    await settle()


async def test_async_for_over_a_remote_run_gives_every_event() -> None:
    app = create_app({"researcher": researcher()})
    async with serving(app) as url, RemoteRuns(url) as runs:
        run_id = await runs.start("researcher", "why?")
        iterated = [e async for e in runs.events(run_id)]
        check_invariants(iterated)
        assert iterated == await collect(runs.events(run_id))
        # Through an operator as well.
        ends = [e async for e in runs.events(run_id).pipe(ops.of_type(rs.ToolEnd))]
        assert ends == [e for e in iterated if isinstance(e, rs.ToolEnd)]
    await settle()


async def test_async_for_over_a_failed_remote_run_raises_after_the_last_event() -> None:
    async def boom(state: dict[str, Any], ctx: rs.RunContext) -> None:
        await ctx.custom("before")
        raise ValueError("remote boom")

    g = rs.StateGraph(name="boom")
    g.add_node("boom", boom)
    g.add_edge(rs.START, "boom")
    async with serving(create_app({"boom": g.compile()})) as base, RemoteRuns(base) as runs:
        run_id = await runs.start("boom", None)
        got: list[rs.Event] = []

        async def iterate() -> None:
            async for event in runs.events(run_id):
                got.append(event)

        with pytest.raises(rs.RunFailed, match="remote boom"):
            await iterate()
        last = got[-1]
        assert isinstance(last, rs.Workflow)
        assert last.phase is rs.Phase.FAILED
    await settle()


async def test_breaking_out_of_async_for_closes_the_stream() -> None:
    events = fake_events(4)
    closed = anyio.Event()

    def handler(request: Request, attempt: int) -> Response:
        async def body() -> AsyncIterator[bytes]:
            try:
                yield frame(events[0])
                yield frame(events[1])
                await anyio.sleep(30)  # a live run that has nothing to say for a while
            finally:
                closed.set()

        return stream(body())

    app, seen = sse_app(handler)
    async with serving(app) as url, RemoteRuns(url) as runs:
        got: list[rs.Event] = []
        async for event in runs.events("r-1"):
            got.append(event)
            if len(got) == 2:
                break
        with anyio.fail_after(5):
            await closed.wait()  # the server saw the client go away
    await settle()
    assert got == events[:2]
    assert len(seen) == 1


async def test_a_run_unknown_to_a_restarted_server_may_have_been_lost() -> None:
    async with serving(create_app({"ticker": ticker(1)})) as url, RemoteRuns(url) as runs:
        run_id = await runs.start("ticker", {})
        await collect(runs.events(run_id))
    # The same graphs served again, on a fresh in-memory bus: the run is gone.
    async with serving(create_app({"ticker": ticker(1)})) as url, RemoteRuns(url) as runs:
        for call in (runs.status, runs.cancel, lambda r: collect(runs.events(r))):
            with pytest.raises(RemoteError) as info:
                await call(run_id)
            assert info.value.status == 404
            assert info.value.detail.startswith(f"unknown run {run_id!r}")
            message = str(info.value)
            assert message.startswith(f"HTTP 404: unknown run {run_id!r}")
            assert "may have been lost" in message
            assert "restart" in message
            assert "in memory" in message
            # Said once: by the server's detail when it says so already, else by the client.
            assert (info.value.hint is None) == ("restart" in info.value.detail)
        # An unknown graph is not a lost run.
        with pytest.raises(RemoteError) as info:
            await runs.start("nope", {})
        assert "restart" not in str(info.value)


def test_without_httpx_the_import_error_names_the_client_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)  # makes `import httpx` fail
    monkeypatch.delitem(sys.modules, "runstream.client")
    with pytest.raises(ImportError, match=re.escape('pip install "runstream[client]"')):
        importlib.import_module("runstream.client")
