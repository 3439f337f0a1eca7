"""Runs across real processes: `runstream serve --role api` x2 and `runstream worker`.

Every process here is a real `python -m runstream` on loopback, sharing a
real redis-server or nats-server; the test reads over HTTP like any client.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from _support.brokers import nats_server, redis_server
from runstream.codec import loads

pytestmark = [pytest.mark.timeout(120)]

TESTS = Path(__file__).resolve().parents[1]
_READY = re.compile(r"(serving .* at (http://\S+)|worker executing)")


class Proc:
    """One `python -m runstream ...` process, its output kept."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runstream", *args],
            cwd=TESTS,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.url = ""
        ready = threading.Event()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line)
                found = _READY.search(line)
                if found:
                    self.url = found.group(2) or ""
                    ready.set()
            ready.set()

        self._reader = threading.Thread(target=read)
        self._reader.start()
        if not ready.wait(30) or self.process.poll() is not None:
            self.stop()
            raise AssertionError("did not start:\n" + "".join(self.lines))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(30)
        self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


@contextmanager
def broker(kind: str) -> Iterator[str]:
    if kind == "redis":
        with redis_server() as server:
            yield server.url + "/0"
    else:
        with nats_server() as server:
            yield server.url


@contextmanager
def processes(*argvs: tuple[str, ...]) -> Iterator[list[Proc]]:
    started: list[Proc] = []
    try:
        for argv in argvs:
            started.append(Proc(*argv))
        yield started
    finally:
        for proc in started:
            proc.stop()


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
