"""Real `python -m runstream ...` processes, run from tests/ (for `_support.apps`).

Used by the cross-process tests and by the bus benchmarks.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
_READY = re.compile(r"(serving .* at (http://\S+)|worker executing)")


class Proc:
    """One `python -m runstream ...` process, its output kept."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runstream", *args],
            cwd=TESTS,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
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
