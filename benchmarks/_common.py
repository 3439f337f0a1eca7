"""Helpers shared by the benchmark scripts: the plain floor, timing, rounds, printing.

The scripts import this module as `_common`; run them as
`python benchmarks/<name>.py`, which puts `benchmarks/` on `sys.path`.

How every throughput script measures (`run_rounds`):

- **clock**: CPU time of this process (`time.process_time`), the figure that
  targets are judged on, because the machine is shared; wall time
  (`time.perf_counter`) is printed beside it, and the two agree on a quiet
  machine;
- **rounds**: one untimed warm-up round, then R rounds; every round runs every
  contender once, in a fresh random order (seeded), so the contenders are
  interleaved and none always follows the same one; figures are medians of the
  rounds, and ratios are taken between medians of the same process run;
- **loop**: every measured case runs in a fresh `asyncio.run` (the default
  asyncio loop); the clocks start inside it and stop before it closes;
- **gc**: enabled for every case; before each one, `gc.collect()` then
  `gc.freeze()`, so no case pays for the garbage of the one before it, nor
  for traversing the heap of libraries that other contenders imported.

The floor (`plain_floor`) is the same everywhere: one `asyncio.Queue(1024)`
carrying small dicts (`{"i": i}`), one `await put` / `await get` per item, a
producer task and a consumer task.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import math
import os
import platform
import random
import shlex
import statistics
import sys
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NamedTuple, TypeVar

import runstream as rs

Contender = Callable[[], Awaitable[int]]
T = TypeVar("T")

FLOOR = "floor: asyncio.Queue(1024), {'i': i}"
FLOOR_BUFFER = 1024

METHOD = (
    "method: CPU time (time.process_time; wall beside it), median of interleaved rounds"
    " (fresh random order each round) after a warm-up round; each case in a fresh"
    " asyncio.run; gc on, collected and frozen before each case"
)


# --- the floor ------------------------------------------------------------------


async def plain_floor(
    n: int,
    *,
    producers: int = 1,
    indexes: AsyncIterable[int] | None = None,
    on_item: Callable[[dict[str, int]], object] | None = None,
) -> int:
    """The plain floor: `n` small dicts through one `asyncio.Queue(1024)`.

    A producer task does one `await queue.put({"i": i})` per item, the calling
    task (the consumer) one `await queue.get()` per item; returns the items
    the consumer got. This is what any backpressured hand-over from one
    coroutine to another pays, written the way anyone would write it.

    Args:
        n: items to move.
        producers: producer tasks sharing the `n` items (each puts its own
            share into the same queue), for the parallel-emitters case.
        indexes: the producer puts `{"i": i}` for each `i` of this async
            iterable instead of `range(n)` (a paced or yielding producer);
            only with one producer.
        on_item: called by the consumer with each item (to stamp its arrival).
    """
    queue: asyncio.Queue[dict[str, int] | None] = asyncio.Queue(FLOOR_BUFFER)
    if indexes is not None and producers != 1:
        raise ValueError("plain_floor: indexes needs producers=1")

    async def produce(start: int, stop: int) -> None:
        for i in range(start, stop):
            await queue.put({"i": i})

    async def producer() -> None:
        if indexes is not None:
            async for i in indexes:
                await queue.put({"i": i})
        elif producers == 1:
            await produce(0, n)
        else:
            bounds = [n * p // producers for p in range(producers + 1)]
            await asyncio.gather(*(produce(a, b) for a, b in itertools.pairwise(bounds)))
        await queue.put(None)

    # The consumer is the calling task: one task on each side of the queue.
    task = asyncio.create_task(producer())
    count = 0
    if on_item is None:
        while await queue.get() is not None:
            count += 1
    else:
        while (item := await queue.get()) is not None:
            on_item(item)
            count += 1
    await task
    return count


# --- runstream contenders shared by several scripts ------------------------------


def custom_graph(n: int, *, name: str = "bench") -> rs.CompiledGraph:
    """A one-node graph whose node does `await ctx.custom("i", i)` for i < n."""

    async def emit(state: dict[str, object], ctx: rs.RunContext) -> None:
        for i in range(n):
            await ctx.custom("i", i)

    g = rs.StateGraph(name=name)
    g.add_node("emit", emit)
    g.add_edge(rs.START, "emit")
    return g.compile()


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


class SendOnlySink:
    """A sink with only `async send` / `async close`, as users write them: it counts.

    No `send_batch`, so `attach` hands it one item per `send` call. With
    `only`, it counts the items of that class alone.
    """

    def __init__(self, only: type | None = None) -> None:
        self.only = only
        self.count = 0
        self.closed = False

    async def send(self, item: object) -> None:
        if self.only is None or type(item) is self.only:
            self.count += 1

    async def close(self) -> None:
        self.closed = True


class CountingSink:
    """A sink that counts what it gets, with `send_batch`, so retained items cost nothing."""

    def __init__(self) -> None:
        self.count = 0
        self.closed = False

    async def send(self, item: object) -> None:
        self.count += 1

    async def send_batch(self, items: Sequence[object]) -> None:
        self.count += len(items)

    async def close(self) -> None:
        self.closed = True


# --- LangGraph ------------------------------------------------------------------


def langgraph_version() -> str | None:
    """The installed LangGraph version, or None (with a hint on stderr)."""
    try:
        import langgraph  # noqa: F401
    except ImportError:
        progress("langgraph not installed: pip install -e '.[bench]'")
        return None
    return package_version("langgraph")


def langgraph_custom_graph(n: int) -> Any:
    """LangGraph's twin of `custom_graph`: a node calling its stream writer `n` times.

    Read it with `app.astream({}, stream_mode="custom")`; each chunk is `{"i": i}`.
    """
    from typing import TypedDict

    from langgraph.config import get_stream_writer
    from langgraph.graph import START, StateGraph

    class S(TypedDict, total=False):
        x: int

    async def emit(state: S) -> S:
        writer = get_stream_writer()
        for i in range(n):
            writer({"i": i})
        return {}

    g = StateGraph(S)
    g.add_node("emit", emit)
    g.add_edge(START, "emit")
    return g.compile()


# --- command line and header ----------------------------------------------------


def parser(
    doc: str | None, *, events: int | None, rounds: int | None = 5
) -> argparse.ArgumentParser:
    """An argument parser with `--events` and `--rounds` (each unless None) and `--seed`."""
    p = argparse.ArgumentParser(
        description=(doc or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if events is not None:
        p.add_argument("--events", type=int, default=events, help=f"default {events:,}")
    if rounds is not None:
        p.add_argument("--rounds", type=int, default=rounds, help=f"default {rounds}")
        p.add_argument("--seed", type=int, default=0, help="seed of the round order, default 0")
    return p


def progress(message: str) -> None:
    """A progress line on stderr, so stdout holds only the results."""
    print(message, file=sys.stderr, flush=True)


def machine() -> str:
    """Python version, core count, CPU model and load average, for the header."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = ", load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = ""
    return f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {cpu}{load}"


def package_version(dist: str) -> str | None:
    """The installed version of distribution `dist`, or None."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def command() -> str:
    """The command line that ran this script, to paste back."""
    return " ".join(["python", *(shlex.quote(a) for a in sys.argv)])


def header(*packages: str, method: str = METHOD) -> None:
    """Print the machine, the versions of runstream and `packages`, the command, the method."""
    names = ("runstream", "reactivex", "attrs", *packages)
    found = [f"{name} {package_version(name) or 'not installed'}" for name in names]
    print(machine())
    print(", ".join(found))
    print(f"command: {command()}")
    if method:
        print(method)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    if load >= 0.5:
        print(
            f"note: load average {load:.2f} at the start: other processes share the machine;"
            " figures and ratios drift under load, rerun on an idle machine to quote them"
        )


# --- timing ---------------------------------------------------------------------


class PerClock(NamedTuple):
    """One figure on both clocks.

    `cpu` comes from `time.process_time` (this process's CPU time), `wall` from
    `time.perf_counter`. On a shared machine the CPU figure moves much less when
    another process takes the core; targets are judged on it.
    """

    wall: float
    cpu: float


def run_case(fn: Callable[[], Awaitable[T]]) -> tuple[PerClock, T]:
    """Run `fn()` in a fresh `asyncio.run`, after `gc.collect()` and `gc.freeze()`.

    Returns the seconds it took (the clocks start and stop inside the loop)
    and what it returned.
    """
    gc.collect()
    gc.freeze()

    async def timed() -> tuple[PerClock, T]:
        wall, cpu = time.perf_counter(), time.process_time()
        got = await fn()
        return PerClock(time.perf_counter() - wall, time.process_time() - cpu), got

    return asyncio.run(timed())


def measure_case(fn: Contender, expected: int) -> PerClock:
    """Seconds `fn()` takes (see `run_case`); fails if it did not return `expected`."""
    elapsed, got = run_case(fn)
    if got != expected:
        raise SystemExit(f"expected {expected} items, got {got}")
    return elapsed


def run_rounds(
    contenders: dict[str, Contender],
    expected: dict[str, int] | int,
    n_rounds: int,
    *,
    seed: int = 0,
    warmup: bool = True,
) -> dict[str, list[PerClock]]:
    """Time every contender once per round, interleaved, in a fresh random order each round.

    Returns the seconds of each round, by contender. One untimed warm-up round
    comes first unless `warmup` is False.
    """

    def want(name: str) -> int:
        return expected if isinstance(expected, int) else expected[name]

    order_of = random.Random(seed)
    if warmup:
        for name, fn in contenders.items():
            measure_case(fn, want(name))
        progress("warm-up done")
    seconds: dict[str, list[PerClock]] = {name: [] for name in contenders}
    for r in range(n_rounds):
        order = list(contenders)
        order_of.shuffle(order)
        for name in order:
            seconds[name].append(measure_case(contenders[name], want(name)))
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


def per_item(n: int, seconds: PerClock) -> PerClock:
    """`seconds` over `n` items: seconds per item on each clock."""
    return PerClock(seconds.wall / n, seconds.cpu / n)


def ratio(a: PerClock, b: PerClock) -> PerClock:
    """`a / b` on each clock."""
    return PerClock(a.wall / b.wall, a.cpu / b.cpu)


def rate_spread(
    seconds: dict[str, list[PerClock]], num: str, den: str
) -> tuple[float, float, float]:
    """Min, median and max over the rounds of `num`'s rate over `den`'s, CPU, same round.

    Both must move the same number of items: the ratio of rates is then `den`'s
    time over `num`'s. Printed beside the ratio of the medians, it shows how
    much the ratio moved from round to round.
    """
    pairs = zip(seconds[num], seconds[den], strict=True)
    values = [d.cpu / n.cpu for n, d in pairs]
    return min(values), statistics.median(values), max(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100) of `values`, nearest rank."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = math.ceil(q / 100 * len(ordered)) - 1
    return ordered[max(0, min(len(ordered) - 1, rank))]


# --- printing -------------------------------------------------------------------

WIDTH = 36  # label column of the SSE scripts' tables
COLUMN = 52  # label column of the tables printed here


def print_rates(rates: dict[str, PerClock], unit: str = "events/s", scale: float = 1e3) -> None:
    """One line per contender: items per second (in thousands by default), CPU then wall."""
    prefix = {1.0: "", 1e3: "k ", 1e6: "M "}[scale]
    print(f"  {prefix + unit:{COLUMN}s} {'cpu':>9s} {'wall':>9s}")
    for name, rate in rates.items():
        print(f"  {name:{COLUMN}s} {rate.cpu / scale:9.1f} {rate.wall / scale:9.1f}")


def print_costs(seconds: dict[str, PerClock], unit: str = "us per event") -> None:
    """One line per name: a cost per item in microseconds, CPU then wall."""
    print(f"  {unit:{COLUMN}s} {'cpu':>9s} {'wall':>9s}")
    for name, s in seconds.items():
        print(f"  {name:{COLUMN}s} {s.cpu * 1e6:9.2f} {s.wall * 1e6:9.2f}")


def print_ratio_header(title: str = "ratio") -> None:
    """The column heads above `print_ratio` lines."""
    print(f"  {title:{COLUMN}s} {'cpu':>9s} {'wall':>9s}")


def print_ratio(
    label: str,
    value: PerClock,
    target: float | None = None,
    *,
    at_most: bool = False,
    spread: tuple[float, float, float] | None = None,
) -> None:
    """One ratio line, CPU then wall, with the per-round CPU ratios and the target.

    `spread` is the min, median and max of the ratio taken within each round
    (`rate_spread`).

    The target is `>= target` (or `<= target` with `at_most`) and is judged on
    the CPU figure; the wall figure's verdict follows in brackets.
    """

    def verdict(v: float) -> str:
        assert target is not None
        return "met" if (v <= target if at_most else v >= target) else "MISSED"

    line = f"  {label:{COLUMN}s} {value.cpu:8.2f}x {value.wall:8.2f}x"
    if spread is not None:
        line += f"   per round {spread[0]:.2f}-{spread[2]:.2f}x, median {spread[1]:.2f}x"
    if target is not None:
        sign = "<=" if at_most else ">="
        line += f"   target {sign} {target:g}x: {verdict(value.cpu)} (wall: {verdict(value.wall)})"
    print(line)
