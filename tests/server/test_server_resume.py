"""Resuming, fan-out, slow readers and reconnects, under a real uvicorn server."""

from __future__ import annotations

import random
import time

import anyio
import httpx
import pytest

import runstream as rs
from _support.invariants import check_invariants
from _support.server import (
    emitter,
    event_of,
    frames_of,
    is_terminal,
    live,
    parse_sse,
    read_frames,
    read_sse,
    start,
    ticks,
    wait_status,
)
from runstream.server import create_app

pytestmark = pytest.mark.anyio


async def test_resume_at_every_position_gives_exactly_the_tail() -> None:
    app = create_app({"emitter": emitter(497)})  # 500 events with Workflow x2 and StateUpdate
    async with live(app, limits=httpx.Limits(max_connections=20)) as client:
        run_id = await start(client, "emitter")
        assert await wait_status(client, run_id) == "completed"
        url = f"/runs/{run_id}/events"
        _, frames = await read_frames(client, url)
        full = [event_of(f) for f in frames]  # checks every frame's id and event fields
        check_invariants(full)
        n = len(full)
        assert n == 500

        mismatches: list[tuple[int, str]] = []
        limiter = anyio.Semaphore(20)

        async def resume(p: int) -> None:
            async with limiter:
                if p % 2:
                    response, tail = await read_frames(client, url, params={"after": p})
                    how = "after"
                else:
                    headers = {"Last-Event-ID": str(p)}
                    response, tail = await read_frames(client, url, headers=headers)
                    how = "Last-Event-ID"
            # nothing after the last event of a finished run: 204 (an EventSource stops)
            assert response.status_code == (204 if p == n - 1 else 200), p
            # frames equal to the full stream's (decoded above): same ids, types, data
            if tail != frames[p + 1 :]:
                mismatches.append((p, how))

        async with anyio.create_task_group() as tg:
            for p in range(-1, n):
                tg.start_soon(resume, p)
        assert mismatches == []


async def test_last_event_id_wins_over_after() -> None:
    # A browser's EventSource resends its original URL (with ?after=) plus the
    # Last-Event-ID header on reconnect: the header is the newer position.
    app = create_app({"emitter": emitter(20)})
    async with live(app) as client:
        run_id = await start(client, "emitter")
        assert await wait_status(client, run_id) == "completed"
        url = f"/runs/{run_id}/events"
        _, full = await read_sse(client, url)
        _, tail = await read_sse(client, url, params={"after": 2}, headers={"Last-Event-ID": "10"})
        assert tail == full[11:]


async def test_fifty_clients_on_one_live_run_get_identical_streams() -> None:
    gate = anyio.Event()
    app = create_app({"emitter": emitter(300, every=10, delay=0.001, gate=gate, gate_at=20)})
    async with live(app, limits=httpx.Limits(max_connections=60)) as client:
        run_id = await start(client, "emitter")
        url = f"/runs/{run_id}/events"
        streams: list[list[rs.Event]] = [[] for _ in range(50)]
        connected = 0
        all_connected = anyio.Event()

        async def reader(i: int) -> None:
            nonlocal connected
            async with client.stream("GET", url) as response:
                assert response.status_code == 200
                async for frame in frames_of(response):
                    streams[i].append(event_of(frame))
                    if len(streams[i]) == 1:
                        connected += 1
                        if connected == 50:
                            all_connected.set()

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(reader, i)
            with anyio.fail_after(10):
                await all_connected.wait()
            # every client is connected while the run is still going on
            assert (await client.get(f"/runs/{run_id}")).json()["status"] == "running"
            gate.set()
        first = streams[0]
        check_invariants(first)
        assert ticks(first) == list(range(300))
        assert is_terminal(first[-1], rs.Phase.COMPLETED)
        assert all(s == first for s in streams)


async def test_a_client_that_stops_reading_does_not_slow_the_run() -> None:
    n = 20_000  # of about 1 kB each: far more than the socket buffers hold
    app = create_app({"emitter": emitter(n, every=100, delay=0.001, pad=1000)})
    async with live(app) as client:

        async def timed_run(stall: bool) -> float:
            began = time.perf_counter()
            run_id = await start(client, "emitter")
            if not stall:
                assert await wait_status(client, run_id, poll=0.01) == "completed"
                return time.perf_counter() - began
            async with client.stream("GET", f"/runs/{run_id}/events") as stalled:
                chunks = stalled.aiter_bytes()
                received = [await anext(chunks)]  # the first bytes, then nothing for a while
                assert await wait_status(client, run_id, poll=0.01) == "completed"
                elapsed = time.perf_counter() - began
                # the stalled client was left behind, not dropped: it still gets everything
                received += [chunk async for chunk in chunks]
            frames, _ = parse_sse(b"".join(received).decode())
            assert [f.id for f in frames] == [str(i) for i in range(n + 3)]
            return elapsed

        alone = await timed_run(stall=False)
        stalled = await timed_run(stall=True)
        alone = min(alone, await timed_run(stall=False))
        assert stalled < 3 * alone, (stalled, alone)


async def test_a_client_that_reconnects_100_times_gets_every_event_once() -> None:
    n = 10_000
    app = create_app({"emitter": emitter(n - 3, every=20, delay=0.001)})
    async with live(app) as client:
        run_id = await start(client, "emitter")
        url = f"/runs/{run_id}/events"
        drops = sorted(random.Random(20240501).sample(range(n - 1), 100))
        got: list[rs.Event] = []
        reconnects = 0
        live_drops = 0
        while True:
            headers = {"Last-Event-ID": str(got[-1].seq)} if got else {}
            drop_at = drops[reconnects] if reconnects < len(drops) else None
            async with client.stream("GET", url, headers=headers) as response:
                assert response.status_code == 200
                async for frame in frames_of(response):
                    got.append(event_of(frame))
                    if drop_at is not None and got[-1].seq >= drop_at:
                        break  # drop the connection mid-stream
                else:
                    break  # the stream ended after the terminal event
            reconnects += 1
            status = (await client.get(f"/runs/{run_id}")).json()["status"]
            live_drops += status == "running"
        assert reconnects == 100
        assert live_drops >= 50, "most drops must happen while the run is going on"
        assert [e.seq for e in got] == list(range(n))
        check_invariants(got)
        assert is_terminal(got[-1], rs.Phase.COMPLETED)
