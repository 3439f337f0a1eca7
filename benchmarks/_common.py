"""Helpers shared by the benchmark scripts: timing, shuffled rounds, medians, printing.

The scripts import this module as `_common`; run them as
`python benchmarks/<name>.py`, which puts `benchmarks/` on `sys.path`.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

import runstream as rs

Contender = Callable[[], Awaitable[int]]


def parser(doc: str | None, *, events: int, rounds: int | None = 5) -> argparse.ArgumentParser:
    """An argument parser with `--events` (and `--rounds` unless `rounds` is None)."""
    p = argparse.ArgumentParser(
        description=(doc or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--events", type=int, default=events, help=f"default {events:,}")
    if rounds is not None:
        p.add_argument("--rounds", type=int, default=rounds, help=f"default {rounds}")
    return p


def progress(message: str) -> None:
    """A progress line on stderr, so stdout holds only the results."""
    print(message, file=sys.stderr, flush=True)


def machine() -> str:
    """Python version, core count and CPU model, for the results header."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {cpu}"


def langgraph_version() -> str | None:
    """The installed LangGraph version, or None (with a hint on stderr)."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        import langgraph  # noqa: F401
    except ImportError:
        progress("langgraph not installed: pip install -e '.[bench]'")
        return None
    try:
        return version("langgraph")
    except PackageNotFoundError:
        return "?"


class PerClock(NamedTuple):
    """One figure on both clocks.

    `wall` comes from `time.perf_counter`, `cpu` from `time.process_time` (this
    process's CPU time). On a shared machine the CPU figure moves much less when
    another process takes the core; the benchmarks print both.
    """

    wall: float
    cpu: float


async def timed(fn: Contender, expected: int) -> PerClock:
    """Seconds `fn()` takes; fails the benchmark if it did not return `expected`."""
    wall, cpu = time.perf_counter(), time.process_time()
    got = await fn()
    elapsed = PerClock(time.perf_counter() - wall, time.process_time() - cpu)
    if got != expected:
        raise SystemExit(f"expected {expected} items, got {got}")
    return elapsed


async def rounds(
    contenders: dict[str, Contender],
    expected: dict[str, int] | int,
    n_rounds: int,
    *,
    warmup: bool = True,
) -> dict[str, list[PerClock]]:
    """Time every contender once per round, in a fresh random order each round.

    Returns the seconds of each round, by contender. One untimed warm-up round
    comes first unless `warmup` is False.
    """

    def want(name: str) -> int:
        return expected if isinstance(expected, int) else expected[name]

    if warmup:
        for name, fn in contenders.items():
            await timed(fn, want(name))
        progress("warm-up done")
    seconds: dict[str, list[PerClock]] = {name: [] for name in contenders}
    for r in range(n_rounds):
        order = list(contenders)
        random.shuffle(order)
        for name in order:
            seconds[name].append(await timed(contenders[name], want(name)))
        progress(f"round {r + 1}/{n_rounds} done")
    return seconds


def medians(seconds: dict[str, list[PerClock]]) -> dict[str, PerClock]:
    """The median of each contender's rounds, on each clock."""
    return {
        name: PerClock(statistics.median(t.wall for t in v), statistics.median(t.cpu for t in v))
        for name, v in seconds.items()
    }


def per_second(n: int, seconds: PerClock) -> PerClock:
    """`n` items over `seconds`: items per second on each clock."""
    return PerClock(n / seconds.wall, n / seconds.cpu)


def ratio(a: PerClock, b: PerClock) -> PerClock:
    """`a / b` on each clock."""
    return PerClock(a.wall / b.wall, a.cpu / b.cpu)


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100) of `values`, nearest rank."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = math.ceil(q / 100 * len(ordered)) - 1
    return ordered[max(0, min(len(ordered) - 1, rank))]


WIDTH = 36


def print_rates(rates: dict[str, PerClock]) -> None:
    """One line per contender: million events per second, wall and CPU clocks."""
    print(f"  {'M events/s':{WIDTH}s} {'wall':>8s} {'cpu':>8s}")
    for name, rate in rates.items():
        print(f"  {name:{WIDTH}s} {rate.wall / 1e6:8.3f} {rate.cpu / 1e6:8.3f}")


def print_costs(seconds: dict[str, PerClock], unit: str = "us per event") -> None:
    """One line per name: a cost per item in microseconds, wall and CPU clocks."""
    print(f"  {unit:{WIDTH}s} {'wall':>8s} {'cpu':>8s}")
    for name, s in seconds.items():
        print(f"  {name:{WIDTH}s} {s.wall * 1e6:8.2f} {s.cpu * 1e6:8.2f}")


def print_ratio(label: str, value: PerClock, target: float | None = None) -> None:
    """One ratio line on both clocks, with its target and whether each meets it."""
    line = f"  {label:{WIDTH}s} {value.wall:7.2f}x {value.cpu:7.2f}x"
    if target is not None:

        def verdict(v: float) -> str:
            return "met" if v >= target else "MISSED"

        line += (
            f"   target >= {target:g}x: {verdict(value.wall)} (wall), {verdict(value.cpu)} (cpu)"
        )
    print(line)


def reply_graph(n: int, text: str = "tok ") -> rs.CompiledGraph:
    """A one-node graph streaming one reply of `n` chunks of `text`."""

    async def reply(state: dict[str, object], ctx: rs.RunContext) -> None:
        async with ctx.stream_reply() as m:
            for _ in range(n):
                await m.write(text)

    g = rs.StateGraph(name="bench")
    g.add_node("reply", reply)
    g.add_edge(rs.START, "reply")
    return g.compile()


class CountingSink:
    """A sink that only counts what it gets, so retained items cost nothing."""

    def __init__(self) -> None:
        self.count = 0
        self.closed = False

    async def send(self, item: object) -> None:
        self.count += 1

    async def send_batch(self, items: Sequence[object]) -> None:
        self.count += len(items)

    async def close(self) -> None:
        self.closed = True
