"""Lag from an emit on a worker to an SSE client of another API process, at 5,000 events/s.

Real processes on loopback: `runstream worker` executes a run that emits
`Custom` events at a steady pace (50 events, then a 10 ms pause: about 5,000
events/s), `runstream serve --role api` serves its stream, and this script
reads it over SSE. Each event's lag is the time it was received here minus
its `ts` (set when the worker emitted it; one machine, one clock). For scale,
the same run on one `runstream serve` process with the in-memory bus (emit
and SSE in one process).

Prints p50, p99 and the worst lag per bus, and the rate the client saw.

    python benchmarks/bus_lag.py [--events 25000]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from _common import header, parser, percentile, progress

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))
from _support.brokers import nats_server, redis_server  # noqa: E402
from _support.processes import Proc  # noqa: E402


@contextmanager
def brokers() -> Iterator[tuple[str, str]]:
    """A `redis-server` and a `nats-server -js` of this script's own: their URLs."""
    with redis_server() as redis, nats_server() as nats:
        yield redis.url + "/0", nats.url


@contextmanager
def process(*args: str) -> Iterator[str]:
    """`python -m runstream ARGS` from tests/ (for `_support.apps`); yields its URL."""
    proc = Proc(*args)
    try:
        yield proc.url
    finally:
        proc.stop()


def measure(api_url: str, n: int) -> tuple[list[float], float]:
    """Start the paced run on `api_url` and read it; the lags (s) and the rate seen."""
    ticks = n - 3  # the run adds its started/state/completed events
    started = httpx.post(
        f"{api_url}/runs",
        json={"graph": "ticker", "input": {"n": ticks, "every": 50, "pause": 0.01}},
        timeout=30,
    )
    run_id = started.json()["run_id"]
    lags: list[float] = []
    first = last = 0.0
    with httpx.stream("GET", f"{api_url}/runs/{run_id}/events", timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                now = time.time()
                lags.append(now - json.loads(line[6:])["ts"])
                first = first or now
                last = now
    if len(lags) != n:
        raise SystemExit(f"expected {n} events, got {len(lags)}")
    return lags, n / (last - first)


def main() -> None:
    p = parser(__doc__, events=25_000, rounds=None)
    args = p.parse_args()
    n = args.events
    header(
        "redis", "hiredis", "nats-py", method="method: wall clock; lag = receipt time - event ts"
    )
    print(f"events per run: {n:,}, paced at about 5,000/s\n")
    print(f"  {'bus':44s} {'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} {'events/s':>9s}")
    with brokers() as (redis_url, nats_url):
        setups = {
            "memory (one process: emit and SSE)": ("memory://", False),
            "redis (worker -> API process)": (redis_url, True),
            "nats (worker -> API process)": (nats_url, True),
        }
        for label, (bus, split) in setups.items():
            progress(f"{label}...")
            with ExitStack() as procs:
                role = "api" if split else "all"
                api = procs.enter_context(
                    process(
                        "serve", "_support.apps:graphs", "--bus", bus, "--role", role, "--port", "0"
                    )
                )
                if split:
                    procs.enter_context(process("worker", "_support.apps:graphs", "--bus", bus))
                measure(api, 2_000)  # warm-up
                lags, rate = measure(api, n)
            ms = [lag * 1e3 for lag in lags]
            print(
                f"  {label:44s} {statistics.median(ms):8.2f} {percentile(ms, 99):8.2f} "
                f"{max(ms):8.2f} {rate:9.0f}"
            )
    print("\n  target: p99 < 50 ms on loopback (worker -> API process)")


if __name__ == "__main__":
    main()
