"""Runs across real processes: `runstream serve --role api` x2 and `runstream worker`.

Every process here is a real `python -m runstream` on loopback, sharing a
real redis-server or nats-server; the test reads over HTTP like any client.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from _support.brokers import nats_server, redis_server
from _support.invariants import check_invariants
from _support.processes import Proc
from _support.watch import eventually
from runstream.buses import open_bus
from runstream.codec import loads

pytestmark = [pytest.mark.timeout(120)]


@contextmanager
def broker(kind: str) -> Iterator[str]:
    if kind == "redis":
        with redis_server() as server:
            yield server.url + "/0"
    else:
        with nats_server() as server:
            yield server.url


@contextmanager
def processes(*argvs: tuple[str, ...], env: dict[str, str] | None = None) -> Iterator[list[Proc]]:
    started: list[Proc] = []
    try:
        for argv in argvs:
            started.append(Proc(*argv, env=env))
        yield started
    finally:
        for proc in started:
            proc.stop()
        for proc in started:  # shown with a failure's report (pytest captures it)
            print(f"--- {' '.join(proc.process.args[3:5])}:\n{''.join(proc.lines)}")  # type: ignore[index]


@contextmanager
def two_apis_and_a_worker(kind: str) -> Iterator[tuple[Proc, Proc, str]]:
    """Two `serve --role api` processes and one `worker` on a broker of `kind`."""
    with broker(kind) as bus:
        api = ("serve", "_support.apps:graphs", "--bus", bus, "--role", "api", "--port", "0")
        worker = ("worker", "_support.apps:graphs", "--bus", bus)
        # The durable graphs keep their checkpoints on the same broker.
        env = {"RUNSTREAM_TEST_CHECKPOINTS": bus}
        with processes(api, api, worker, env=env) as (api1, api2, _):
            yield api1, api2, bus


def sse_events(body: str) -> list[tuple[int, dict[str, object]]]:
    """(id, event JSON) of each SSE message with data in `body`."""
    out = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            out.append((int(fields["id"]), fields["data"]))
    return [(i, loads(d)) for i, d in out]  # type: ignore[misc]


@pytest.mark.parametrize("kind", ["redis", "nats"])
def test_started_on_one_api_executed_on_a_worker_read_exactly_on_another(kind: str) -> None:
    with broker(kind) as bus:
        api = ("serve", "_support.apps:graphs", "--bus", bus, "--role", "api", "--port", "0")
        worker = ("worker", "_support.apps:graphs", "--bus", bus, "--concurrency", "4")
        with processes(api, api, worker) as (api1, api2, _):
            started = httpx.post(
                f"{api1.url}/runs", json={"graph": "ticker", "input": {"n": 297}}, timeout=10
            )
            assert started.status_code == 201, started.text
            run_id = started.json()["run_id"]
            whole = httpx.get(f"{api2.url}/runs/{run_id}/events", timeout=30)
            events = sse_events(whole.text)
            assert [i for i, _ in events] == list(range(300))
            assert events[-1][1].type == "workflow"
            for after in range(-1, 300, 7):
                tail = httpx.get(
                    f"{(api1, api2)[after % 2].url}/runs/{run_id}/events",
                    headers={"Last-Event-ID": str(after)},
                    timeout=30,
                )
                if after == 299:
                    assert tail.status_code == 204
                else:
                    assert sse_events(tail.text) == events[after + 1 :], after
            status = httpx.get(f"{api1.url}/runs/{run_id}", timeout=10).json()
            assert (status["status"], status["events"]) == ("completed", 300)


@pytest.mark.parametrize("kind", ["redis", "nats"])
def test_a_killed_worker_s_run_ends_worker_lost_and_another_worker_goes_on(kind: str) -> None:
    with broker(kind) as bus:
        api = ("serve", "_support.apps:graphs", "--bus", bus, "--role", "api", "--port", "0")
        worker = ("worker", "_support.apps:graphs", "--bus", bus, "--lease", "1")
        with processes(api, worker) as (api1, doomed):
            run_id = httpx.post(
                f"{api1.url}/runs", json={"graph": "ticker", "input": {"n": 9, "hang_at": 4}}
            ).json()["run_id"]
            with httpx.stream("GET", f"{api1.url}/runs/{run_id}/events", timeout=30) as stream:
                seen = []
                for line in stream.iter_lines():
                    if line.startswith("id: "):
                        seen.append(int(line[4:]))
                        if len(seen) == 5:  # the run hangs at tick 4: kill its worker
                            doomed.stop(signal.SIGKILL)
                    if line.startswith("data: "):
                        last = loads(line[6:])
            assert last.type == "workflow"
            assert (last.phase, last.error.type) == ("failed", "WorkerLost")  # type: ignore[union-attr]
            with processes(worker) as _:
                again = httpx.post(f"{api1.url}/runs", json={"graph": "ticker", "input": {"n": 5}})
                done = sse_events(
                    httpx.get(f"{api1.url}/runs/{again.json()['run_id']}/events", timeout=30).text
                )
                assert done[-1][1].phase == "completed"  # type: ignore[union-attr]


def read_until(url: str, after: int, limit: int) -> list[tuple[int, object]]:
    """Up to `limit` events after `after`, then drop the connection (as a flaky network does)."""
    got: list[tuple[int, object]] = []
    with httpx.stream("GET", url, headers={"Last-Event-ID": str(after)}, timeout=30) as response:
        if response.status_code == 204:
            return got
        event_id = None
        for line in response.iter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: ") and event_id is not None:
                got.append((event_id, loads(line[6:])))
                if len(got) >= limit:
                    break
    return got


@pytest.mark.parametrize("kind", ["redis", "nats"])
def test_fifty_drops_to_random_api_processes_lose_and_repeat_nothing(kind: str) -> None:
    rng = __import__("random").Random(7)
    with broker(kind) as bus:
        api = ("serve", "_support.apps:graphs", "--bus", bus, "--role", "api", "--port", "0")
        worker = ("worker", "_support.apps:graphs", "--bus", bus)
        with processes(api, api, worker) as (api1, api2, _):
            run_id = httpx.post(
                f"{api1.url}/runs",
                json={"graph": "ticker", "input": {"n": 4997, "every": 250, "pause": 0.05}},
            ).json()["run_id"]
            seen: list[tuple[int, object]] = []
            drops = 0
            while not seen or seen[-1][1].type != "workflow" or seen[-1][1].run.parent_run_id:  # type: ignore[attr-defined]
                target = rng.choice((api1, api2))
                got = read_until(
                    f"{target.url}/runs/{run_id}/events", seen[-1][0] if seen else -1, 97
                )
                seen.extend(got)
                drops += 1
            assert drops >= 50
            assert [i for i, _ in seen] == list(range(5000))
            assert [e.seq for _, e in seen] == list(range(5000))  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["redis", "nats"])
def test_a_reader_whose_api_process_is_killed_resumes_on_the_other(kind: str) -> None:
    with two_apis_and_a_worker(kind) as (api1, api2, _):
        run_id = httpx.post(
            f"{api1.url}/runs",
            json={"graph": "ticker", "input": {"n": 997, "every": 100, "pause": 0.05}},
        ).json()["run_id"]
        first = read_until(f"{api1.url}/runs/{run_id}/events", -1, 300)
        api1.stop(signal.SIGKILL)  # mid-stream, while the run goes on
        rest = read_until(f"{api2.url}/runs/{run_id}/events", first[-1][0], 10_000)
        assert [i for i, _ in first + rest] == list(range(1000))


@pytest.mark.parametrize("kind", ["redis", "nats"])
def test_two_hundred_concurrent_runs_on_two_workers_all_complete_gap_free(
    kind: str,
) -> None:
    import anyio

    with broker(kind) as base:
        bus = base
        api = ("serve", "_support.apps:graphs", "--bus", bus, "--role", "api", "--port", "0")
        worker = ("worker", "_support.apps:graphs", "--bus", bus, "--concurrency", "100")
        with processes(api, worker, worker) as (api1, *_):

            async def one(client: httpx.AsyncClient) -> list[int]:
                started = await client.post(
                    "/runs",
                    json={"graph": "ticker", "input": {"n": 47, "every": 10, "pause": 0.01}},
                )
                run_id = started.json()["run_id"]
                response = await client.get(f"/runs/{run_id}/events")
                assert response.status_code == 200, (response.status_code, response.text)
                body = response.text
                return [i for i, _ in sse_events(body)]

            async def all_runs() -> list[list[int]]:
                # A connection per request: a pooled one can be closed by the
                # server's keep-alive timeout just as it is reused (a ReadError).
                limits = httpx.Limits(max_connections=400, max_keepalive_connections=0)
                async with httpx.AsyncClient(
                    base_url=api1.url, timeout=60, limits=limits
                ) as client:
                    results: list[list[int]] = []

                    async def add() -> None:
                        results.append(await one(client))

                    async with anyio.create_task_group() as tasks:
                        for _ in range(200):
                            tasks.start_soon(add)
                    return results

            results = anyio.run(all_runs)
            assert len(results) == 200
            bad = [seqs for seqs in results if seqs != list(range(50))]
            assert bad == [], [(len(b), b[:3], b[-3:]) for b in bad][:5]
        if kind == "redis":  # every lease was released: the leases key is gone
            assert not anyio.run(_redis_has, base, "runstream:leases")


async def _redis_has(url: str, key: str) -> bool:
    import redis.asyncio as redis

    client = redis.Redis.from_url(url)
    try:
        return bool(await client.exists(key))
    finally:
        await client.aclose()


@pytest.mark.parametrize("kind", ["redis", "nats"])
def test_cancel_on_an_api_process_and_sigterm_of_a_worker_end_runs_cleanly(kind: str) -> None:
    with broker(kind) as bus:
        api = ("serve", "_support.apps:graphs", "--bus", bus, "--role", "api", "--port", "0")
        worker = ("worker", "_support.apps:graphs", "--bus", bus)
        with processes(api, worker) as (api1, worker1):
            hanging = {"graph": "ticker", "input": {"n": 9, "hang_at": 3}}
            first = httpx.post(f"{api1.url}/runs", json=hanging).json()["run_id"]
            second = httpx.post(f"{api1.url}/runs", json=hanging).json()["run_id"]
            read_until(f"{api1.url}/runs/{first}/events", -1, 4)  # it hangs on the worker
            read_until(f"{api1.url}/runs/{second}/events", -1, 4)
            assert httpx.post(f"{api1.url}/runs/{first}/cancel").status_code == 202
            ended = sse_events(httpx.get(f"{api1.url}/runs/{first}/events", timeout=30).text)
            assert ended[-1][1].phase == "canceled"  # type: ignore[union-attr]
            assert worker1.stop(signal.SIGTERM) == 0  # its other run ends before it exits
            assert "worker stopped" in "".join(worker1.lines)
            rest = sse_events(httpx.get(f"{api1.url}/runs/{second}/events", timeout=30).text)
            assert rest[-1][1].phase == "canceled"  # type: ignore[union-attr]
            assert [i for i, _ in rest] == list(range(len(rest)))


@pytest.mark.parametrize("kind", ["redis", "nats"])
def test_leaving_a_stream_and_cancel_route_stops_the_run_on_its_worker(kind: str) -> None:
    with broker(kind) as bus:
        api = ("serve", "_support.apps:graphs", "--bus", bus, "--role", "api", "--port", "0")
        worker = ("worker", "_support.apps:graphs", "--bus", bus)
        with processes(api, api, worker) as (api1, api2, _):
            hanging = {"graph": "ticker", "input": {"n": 9, "hang_at": 3}}
            seen = 0
            with httpx.stream("POST", f"{api1.url}/runs/stream", json=hanging) as response:
                run_id = response.headers["X-Run-Id"]
                for line in response.iter_lines():
                    seen += line.startswith("data: ")
                    if seen == 4:  # the run hangs on the worker: the client leaves
                        break
            ended = sse_events(httpx.get(f"{api2.url}/runs/{run_id}/events", timeout=30).text)
            assert ended[-1][1].phase == "canceled"  # type: ignore[union-attr]
            assert [i for i, _ in ended] == list(range(len(ended)))
            assert httpx.get(f"{api2.url}/runs/{run_id}").json()["status"] == "canceled"


@pytest.mark.parametrize("kind", ["redis", "nats"])
@pytest.mark.parametrize("graph", ["booker", "durable_booker"])
def test_an_answer_posted_to_one_api_reaches_the_run_waiting_on_a_worker(
    kind: str, graph: str
) -> None:
    with two_apis_and_a_worker(kind) as (api1, api2, bus):
        started = httpx.post(f"{api1.url}/runs", json={"graph": graph}, timeout=10)
        run_id = started.json()["run_id"]
        answers = f"{api2.url}/runs/{run_id}/answers"
        seen: list[str] = []
        with httpx.stream("GET", f"{api1.url}/runs/{run_id}/events", timeout=30) as live:
            for line in live.iter_lines():
                if not line.startswith("data: "):
                    continue
                event = loads(line[6:])
                seen.append(event.type)
                if event.type.startswith("await_") and graph == "durable_booker":
                    suspended_on(bus, run_id)  # no task holds it on the worker now
                if event.type == "await_clarification":
                    wrong = httpx.post(answers, json={"request_id": "ask_x", "value": 1})
                    assert wrong.status_code == 404, wrong.text
                    body = {"request_id": event.request_id, "value": "noon"}
                    assert httpx.post(answers, json=body).status_code == 202
                    again = httpx.post(answers, json=body).status_code
                    assert again == 409 if graph == "durable_booker" else again in (404, 409)
                elif event.type == "await_external_tools":
                    body = {"request_id": event.request_id, "value": "Oslo"}
                    assert httpx.post(answers, json=body).status_code == 422
                    body["value"] = ["Oslo"]
                    assert httpx.post(answers, json=body).status_code == 202
        record = httpx.get(f"{api2.url}/runs/{run_id}", timeout=10).json()
        assert record["status"] == "completed"
        assert seen[-2:] == ["state_update", "workflow"]


@pytest.mark.parametrize("scheme", ["redis", "nats"])
def test_an_unreachable_broker_is_one_line_naming_it(scheme: str) -> None:
    import socket

    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        url = f"{scheme}://127.0.0.1:{s.getsockname()[1]}"
        for command in ("serve", "worker"):
            done = subprocess.run(
                [sys.executable, "-m", "runstream", command, "--demo", "--bus", url],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 2
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1, done.stderr
            assert lines[0].startswith("runstream: error: cannot reach")
            assert url in lines[0]


@pytest.mark.parametrize("kind", ["redis", "nats"])
def test_kill_9_of_a_worker_mid_run_the_run_completes_on_another_from_its_checkpoint(
    kind: str,
) -> None:
    with broker(kind) as bus:
        env = {"RUNSTREAM_TEST_CHECKPOINTS": bus}
        graphs = "_support.apps:graphs"
        started: list[Proc] = []
        try:
            api = Proc("serve", graphs, "--bus", bus, "--role", "api", "--port", "0", env=env)
            started.append(api)
            doomed = Proc(
                "worker",
                graphs,
                "--bus",
                bus,
                "--lease",
                "1",
                env={**env, "RUNSTREAM_TEST_HANG": "s3"},
            )
            started.append(doomed)
            run_id = httpx.post(f"{api.url}/runs", json={"graph": "steps"}).json()["run_id"]
            events = []
            with httpx.stream("GET", f"{api.url}/runs/{run_id}/events", timeout=60) as stream:
                for line in stream.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    event = loads(line[6:])
                    events.append(event)
                    if event.type == "assistant_reply" and event.text == "s3 ":
                        doomed.stop(signal.SIGKILL)  # in the middle of step 3 of 5
                        started.append(
                            Proc("worker", graphs, "--bus", bus, "--lease", "1", env=env)
                        )
        finally:
            for proc in started:
                proc.stop()
            for proc in started:
                print(f"--- {' '.join(proc.process.args[3:5])}:\n{''.join(proc.lines)}")  # type: ignore[index]
    check_invariants(events)  # gap-free, each seq once, one terminal event, all closed
    assert events[-1].phase == "completed"  # type: ignore[union-attr]
    marker = next(e for e in events if e.type == "custom" and e.name == "runstream.resumed")
    assert marker.data["reason"] == "worker_lost"  # type: ignore[attr-defined]
    assert marker.data["nodes"] == ["s3"]  # type: ignore[attr-defined]
    first, last = marker.data["superseded"]  # type: ignore[attr-defined]
    lost = [e for e in events if first <= e.seq <= last]
    assert lost[0].type == "tool_start"
    assert lost[-1].seq == marker.seq - 1
    closers = events[marker.seq + 1 : marker.seq + 3]
    assert [(e.type, getattr(e, "done", None)) for e in closers] == [
        ("assistant_reply", True),
        ("tool_end", None),
    ]
    assert closers[1].error.type == "Superseded"  # type: ignore[attr-defined]
    final = [e for e in events if e.type == "state_update" and "final" in e.updates]
    assert [e.updates["final"] for e in final] == [["s1", "s2", "s3", "s4", "s5"]]  # type: ignore[attr-defined]
    steps_run = [e.node for e in events if e.type == "state_update"]
    assert steps_run == ["s1", "s2", "s3", "s4", "s5"]


def suspended_on(bus: str, run_id: str) -> None:
    """Return once the run's checkpoint on the broker says `suspended` (nothing announces it)."""

    async def watch() -> None:
        store = open_bus(bus)

        async def suspended() -> bool:
            data = await store.load_checkpoint(f"run/{run_id}")  # type: ignore[union-attr]
            return data is not None and json.loads(data)["status"] == "suspended"

        try:
            await eventually(suspended, f"run {run_id} suspended", within=20)
        finally:
            await store.aclose()  # type: ignore[union-attr]

    asyncio.run(watch())


@pytest.mark.parametrize("kind", ["redis", "nats"])
def test_every_process_restarts_while_a_run_is_suspended_then_an_answer_completes_it(
    kind: str,
) -> None:
    with broker(kind) as bus:
        env = {"RUNSTREAM_TEST_CHECKPOINTS": bus}
        api = ("serve", "_support.apps:graphs", "--bus", bus, "--role", "api", "--port", "0")
        worker = ("worker", "_support.apps:graphs", "--bus", bus)
        with processes(api, worker, env=env) as (api1, _):
            run_id = httpx.post(f"{api1.url}/runs", json={"graph": "durable_booker"}).json()[
                "run_id"
            ]
            with httpx.stream("GET", f"{api1.url}/runs/{run_id}/events", timeout=30) as live:
                for line in live.iter_lines():
                    if line.startswith("data: "):
                        event = loads(line[6:])
                        if event.type == "await_clarification":
                            request_id = event.request_id
                            break
            suspended_on(bus, run_id)
        # Every process is gone; new ones on the same broker.
        with processes(api, worker, env=env) as (api2, _):
            answers = f"{api2.url}/runs/{run_id}/answers"
            body = {"request_id": request_id, "value": "noon"}
            assert httpx.post(answers, json=body).status_code == 202
            assert httpx.post(answers, json=body).status_code == 409
            events = []
            with httpx.stream("GET", f"{api2.url}/runs/{run_id}/events", timeout=30) as live:
                for line in live.iter_lines():
                    if line.startswith("data: "):
                        event = loads(line[6:])
                        events.append(event)
                        if event.type == "await_external_tools":
                            body = {"request_id": event.request_id, "value": ["Oslo"]}
                            assert httpx.post(answers, json=body).status_code == 202
    check_invariants(events)
    assert events[-1].phase == "completed"  # type: ignore[union-attr]
    update = next(e for e in events if e.type == "state_update")
    assert update.updates == {"booked": ["noon", ["Oslo"]]}  # type: ignore[attr-defined]
