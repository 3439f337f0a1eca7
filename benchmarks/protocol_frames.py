"""UI protocol formats over SSE: one streamed reply in runstream, AG-UI and AI SDK frames.

`GET /runs/{run_id}/events?format=runstream|ag-ui|ai-sdk` serves a run as
runstream's own SSE frames (built once per event and shared by every reader),
as AG-UI events or as AI SDK UI message stream chunks (translated from the
run's first event once per run and format, the encoded frames shared by the
readers; one SSE message per frame). This measures
what each format delivers on loopback, side by side against one server, to
1 client and to 100 clients reading the same run at once.

The server (`create_app` under uvicorn, on a free loopback port) runs in a
child process of its own (see `_sse.py`); the clients run in this process.
The run is the bench graph with `{"reply": True}`: one node streaming one
reply of N chunks of `"tok "` flat out (`ctx.stream_reply()`), the dominant
real workload, so the run has N + 4 events: N+4 runstream frames, N+6 AG-UI
frames (RUN_STARTED, STEP_STARTED, TEXT_MESSAGE_START, N contents, ..._END,
STEP_FINISHED, RUN_FINISHED), N+7 AI SDK messages (start, start-step,
text-start, N deltas, text-end, finish-step, finish, `[DONE]`).

For each client count k, each round, in a fresh random order of counts and,
within a count, of formats: `POST /runs` with a gate, k clients connect to
`?format=...` and get the response's first bytes, the gate opens and the
clock starts; it stops when every client has the whole stream and the
server has closed every connection.

The clients are `SseCounter`s (see `_sse.py`): raw `asyncio.Protocol`
connections. Each checks the id of the last frame it got; one in 16 also
counts the SSE messages with data (`data:` lines, with `bytes.count`: what a
client's parser hands out) and that count must be the format's frame count.
Before the rounds, one untimed read of each format is parsed in full (every
message split on blank lines, every `data:` line decoded as JSON) to check
those counts, the last ids and the N text deltas.

Prints, per client count and format: frames and run events delivered per
second in total (wall clock), the server's and this process's CPU time per
delivered run event, frames per client read, the wall time; then, from the
medians of the rounds, each protocol format's throughput over runstream's
(same run, same client count; frames/s and run events/s, wall clock; run
events per server CPU second), against the target of 0.7x on run events/s.

    python benchmarks/protocol_frames.py [--events 100000] [--fanout-events 10000]
        [--clients 1,100] [--rounds 5]

`--events` is the reply's chunks for 1 client, `--fanout-events` for more
clients.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import statistics
from typing import NamedTuple

import httpx
from _common import machine, parser, progress
from _sse import (
    DATA_LINE,
    REPLY_OTHER_EVENTS,
    REPLY_TEXT,
    Server,
    clocked,
    connect_readers,
    http_implementation,
    load_average,
    open_gate,
    start_run,
    wait_readers,
)

NATIVE = "runstream"
FORMATS = (NATIVE, "ag-ui", "ai-sdk")
# Frames a reply of n chunks makes beyond its n text frames, and the id of the
# last frame: see the docstring. The AI SDK's `[DONE]` has no id.
EXTRA_FRAMES = {NATIVE: REPLY_OTHER_EVENTS, "ag-ui": 6, "ai-sdk": 7}
LAST_PART = {NATIVE: "", "ag-ui": "", "ai-sdk": ".1"}
TEXT_DELTA = {NATIVE: "assistant_reply", "ag-ui": "TEXT_MESSAGE_CONTENT", "ai-sdk": "text-delta"}
TARGET = 0.7  # a protocol format's run events/s over runstream's, at least
CHECK_EVENTS = 1_000  # the reply of the untimed, fully parsed read


class Result(NamedTuple):
    wall: float
    client_cpu: float
    server_cpu: float
    reads: int  # reads by all clients together


def frames_of(fmt: str, n: int) -> int:
    """SSE messages with data that a reply of `n` chunks makes in `fmt`."""
    return n + EXTRA_FRAMES[fmt]


def last_id_of(fmt: str, n: int) -> str:
    """The id of the last frame of a reply of `n` chunks in `fmt`."""
    return f"{n + REPLY_OTHER_EVENTS - 1}{LAST_PART[fmt]}"


def parse_sse(body: bytes) -> list[tuple[str | None, str]]:
    """The SSE messages with data in `body`: `(id, data)` each, as an EventSource sees them."""
    messages: list[tuple[str | None, str]] = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        ident: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "id":
                ident = value
            elif field == "data":
                data.append(value)
        if data:
            messages.append((ident, "\n".join(data)))
    return messages


async def check_formats(server: Server) -> None:
    """Parse one whole stream of each format; check frame counts, last ids and text deltas."""
    n = CHECK_EVENTS
    run_id = await start_run(server.base, events=n, reply=True)
    async with httpx.AsyncClient(timeout=60) as client:
        for fmt in FORMATS:
            r = await client.get(f"{server.base}/runs/{run_id}/events?format={fmt}")
            r.raise_for_status()
            messages = parse_sse(r.content)
            ids = [i for i, _ in messages if i is not None]
            datas = [d for _, d in messages if d != "[DONE]"]
            deltas = sum(json.loads(d).get("type") == TEXT_DELTA[fmt] for d in datas)
            if fmt == NATIVE:  # runstream's replies: the n chunks and the closing done one
                deltas -= 1
            done = len(messages) - len(datas)
            if (
                len(messages) != frames_of(fmt, n)
                or ids[-1] != last_id_of(fmt, n)
                or deltas != n
                or done != (fmt == "ai-sdk")
            ):
                raise SystemExit(
                    f"{fmt}: {len(messages)} messages, the last id {ids[-1]}, {deltas} text"
                    f" deltas, {done} [DONE]; expected {frames_of(fmt, n)}, {last_id_of(fmt, n)},"
                    f" {n}, {int(fmt == 'ai-sdk')}"
                )


async def read_once(
    server: Server, http: httpx.AsyncClient, fmt: str, k: int, n: int, key: str
) -> Result:
    """One gated reply of `n` chunks read by `k` clients in format `fmt`."""
    run_id = await start_run(server.base, events=n, reply=True, gate=key)
    path = f"/runs/{run_id}/events?format={fmt}"
    readers = await connect_readers(server.port, path, k, marker=DATA_LINE)

    async def go() -> None:
        await open_gate(server.base, key, http)
        await wait_readers(readers, frames_of(fmt, n), last_id_of(fmt, n))

    wall, client_cpu, server_cpu = await clocked(server, go)
    return Result(wall, client_cpu, server_cpu, sum(r.reads for r in readers))


async def measure(
    sizes: dict[int, int], n_rounds: int, seed: int
) -> dict[tuple[int, str], list[Result]]:
    results: dict[tuple[int, str], list[Result]] = {(k, fmt): [] for k in sizes for fmt in FORMATS}
    order_of = random.Random(seed)
    async with Server() as server, httpx.AsyncClient() as http:
        await check_formats(server)
        progress("formats checked: frame counts, last ids, text deltas")
        for fmt in FORMATS:  # warm-up, untimed
            await read_once(server, http, fmt, 2, CHECK_EVENTS, f"warm-up-{fmt}")
        progress("warm-up done")
        for r in range(n_rounds):
            counts = list(sizes)
            order_of.shuffle(counts)
            for k in counts:
                formats = list(FORMATS)
                order_of.shuffle(formats)
                for fmt in formats:
                    got = await read_once(server, http, fmt, k, sizes[k], f"{fmt}-{k}-{r}")
                    results[k, fmt].append(got)
                progress(f"round {r + 1}/{n_rounds}: {clients(k)} done")
    return results


def report(
    results: dict[tuple[int, str], list[Result]], sizes: dict[int, int], n_rounds: int, load: str
) -> None:
    def med(k: int, fmt: str, field: str) -> float:
        return float(statistics.median(getattr(x, field) for x in results[k, fmt]))

    print(f"{machine()}, uvicorn with {http_implementation()}, load average before: {load}")
    print(
        f"one run streaming one reply of N chunks of {REPLY_TEXT!r} flat out"
        f" (N + {REPLY_OTHER_EVENTS} events), read by k SSE clients on loopback in each"
        f" format; median of {n_rounds} round{'s' if n_rounds > 1 else ''}"
    )
    print(
        "server: a child process (uvicorn, one event loop); clients: raw asyncio"
        " connections in this process counting `data:` lines, sharing the machine with it"
    )
    print(
        f"  {'clients':>7s} {'N':>7s} {'format':9s} {'frames':>7s} {'delivered':>11s}"
        f" {'delivered':>11s} {'server':>8s} {'client':>8s} {'frames':>7s} {'wall':>6s}"
    )
    print(
        f"  {'':>7s} {'':>7s} {'':9s} {'per run':>7s} {'frames/s':>11s} {'events/s':>11s}"
        f" {'us/event':>8s} {'us/event':>8s} {'per read':>7s} {'s':>6s}"
    )
    for k, n in sizes.items():
        events = k * (n + REPLY_OTHER_EVENTS)
        for fmt in FORMATS:
            frames = k * frames_of(fmt, n)
            wall = med(k, fmt, "wall")
            print(
                f"  {k:7,d} {n:7,d} {fmt:9s} {frames_of(fmt, n):7,d} {frames / wall:11,.0f}"
                f" {events / wall:11,.0f} {med(k, fmt, 'server_cpu') / events * 1e6:8.2f}"
                f" {med(k, fmt, 'client_cpu') / events * 1e6:8.2f}"
                f" {frames / med(k, fmt, 'reads'):7.1f} {wall:6.2f}"
            )
    print(
        f"\n  {'format / runstream':24s} {'events/s':>9s} {'frames/s':>9s} {'events per':>10s}"
        f"   target: events/s >= {TARGET}x"
    )
    print(f"  {'(same run, same k)':24s} {'wall':>9s} {'wall':>9s} {'server cpu':>10s}")
    for k, n in sizes.items():
        native_wall, native_cpu = med(k, NATIVE, "wall"), med(k, NATIVE, "server_cpu")
        for fmt in FORMATS[1:]:
            wall, cpu = med(k, fmt, "wall"), med(k, fmt, "server_cpu")
            events = native_wall / wall
            frames = events * frames_of(fmt, n) / frames_of(NATIVE, n)
            spread = [
                a.wall / b.wall for a, b in zip(results[k, NATIVE], results[k, fmt], strict=True)
            ]
            verdict = "met" if events >= TARGET else f"MISSED by {TARGET - events:.2f}x"
            print(
                f"  {f'{clients(k)}, {fmt}':24s} {events:8.2f}x"
                f" {frames:8.2f}x {ratio(native_cpu, cpu):9.2f}x   {verdict}"
                f" (per round {min(spread):.2f}-{max(spread):.2f}x)"
            )
    for k in sizes:
        for fmt in FORMATS:
            walls = ", ".join(f"{x.wall:.2f}" for x in results[k, fmt])
            print(f"  {clients(k)}, {fmt}: {walls} s per round (wall)")


def clients(k: int) -> str:
    return f"{k:,} client{'s' if k > 1 else ''}"


def ratio(a: float, b: float) -> float:
    """`a / b`; NaN when `b` is 0 (a CPU time below the 10 ms tick of `/proc`)."""
    return a / b if b else math.nan


def main() -> None:
    p = parser(__doc__, events=100_000, rounds=5)
    p.add_argument(
        "--fanout-events",
        type=int,
        default=10_000,
        help="reply chunks when more than one client reads (default 10,000)",
    )
    p.add_argument("--clients", default="1,100", help="client counts, comma-separated")
    args = p.parse_args()
    counts = sorted({int(k) for k in args.clients.split(",")})
    sizes = {k: args.events if k == 1 else args.fanout_events for k in counts}
    load = load_average()  # before this script's own processes weigh in
    progress(f"client counts {counts}, reply chunks {sizes}")
    results = asyncio.run(measure(sizes, args.rounds, args.seed))
    report(results, sizes, args.rounds, load)


if __name__ == "__main__":
    main()
