"""Events per second into each bus: batched writes, one write per event, the broker's floor.

A run of N `Custom` events is drained into `bus.sink()` (what a `Runtime`
does with every run it executes), on `MemoryBus`, `RedisBus` and `NatsBus`:

- **batched**: the sink as it is: `attach` hands it the events queued while
  the previous write was out, and each batch is one XADD pipeline (Redis) or
  one burst of async publishes whose acks are awaited together (NATS);
- **one write per event**: the same sink seen through `send` only, so every
  event is its own round trip;
- **broker floor**: the broker's own client with nothing of runstream: the N
  events encoded beforehand, written in pipelines of 512 `XADD`s with
  explicit ids (redis-py) / bursts of 512 async publishes (nats-py), awaited
  per burst.

The brokers are real `redis-server` and `nats-server -js` processes on
loopback, started by this script (as the tests start them) unless
`--redis URL` / `--nats URL` are given. The work is shared between this
process and the broker, so the figures here are **wall time**: medians of
interleaved rounds, each case in a fresh `asyncio.run`.

    python benchmarks/bus_write.py [--events 20000] [--rounds 5]
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

from _common import custom_graph, header, parser, progress

import runstream as rs
from runstream._ids import new_id

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _support.brokers import nats_server, redis_server

Case = Callable[[], Awaitable[None]]


class _OneByOne:
    """The bus sink seen through `send` only: one write per event."""

    def __init__(self, sink: rs.buses.BusSink) -> None:
        self.sink = sink

    async def send(self, item: rs.Event) -> None:
        await self.sink.send(item)

    async def close(self) -> None:
        await self.sink.close()


def _encoded(n: int) -> list[bytes]:
    run = rs.RunInfo(run_id="floor", agent="bench")
    return [rs.codec.dumps(rs.Custom(run=run, seq=i, name="tick", data=i)) for i in range(n)]


def cases(kind: str, url: str, n: int) -> dict[str, Case]:
    app = custom_graph(n)

    def make_bus() -> rs.buses.WorkBus:
        name = "b" + new_id()[:8]
        if kind == "memory":
            return rs.MemoryBus()
        if kind == "redis":
            return rs.RedisBus(url, prefix=name, retention=60)
        return rs.NatsBus(url, stream=name.upper(), prefix=name, retention=60)

    async def batched() -> None:
        bus = make_bus()
        await bus.connect()
        await rs.drain(app.run(), bus.sink())
        await bus.aclose()

    async def one_by_one() -> None:
        bus = make_bus()
        await bus.connect()
        await rs.drain(app.run(), _OneByOne(bus.sink()))
        await bus.aclose()

    out = {f"{kind}: batched": batched, f"{kind}: one write per event": one_by_one}
    payloads = _encoded(n)
    if kind == "redis":
        import redis.asyncio as redis

        async def floor() -> None:
            client = redis.Redis.from_url(url)
            key = "floor:" + new_id()
            for start in range(0, n, 512):
                pipe = client.pipeline(transaction=False)
                for i in range(start, min(n, start + 512)):
                    pipe.xadd(key, {"event": payloads[i]}, id=f"0-{i + 1}")
                await pipe.execute()
            await client.delete(key)
            await client.aclose()

        out["redis: broker floor (redis-py pipelined XADD)"] = floor
    elif kind == "nats":
        import nats

        async def floor() -> None:
            nc = await nats.connect(url)
            js = nc.jetstream()
            name = "F" + new_id()[:8].upper()
            await js.add_stream(name=name, subjects=[f"{name}.>"])
            subject = f"{name}.run"
            for start in range(0, n, 512):
                acks = [  # publish_async is a coroutine that returns the ack's future
                    await js.publish_async(subject, payloads[i], headers={"Nats-Msg-Id": f"r:{i}"})
                    for i in range(start, min(n, start + 512))
                ]
                await asyncio.gather(*acks)
            await js.delete_stream(name)
            await nc.close()

        out["nats: broker floor (nats-py async publishes)"] = floor
    return out


def timed(case: Case) -> float:
    async def run() -> float:
        start = time.perf_counter()
        await case()
        return time.perf_counter() - start

    return asyncio.run(run())


def main() -> None:
    p = parser(__doc__, events=20_000)
    p.add_argument("--redis", metavar="URL", help="use this Redis instead of starting one")
    p.add_argument("--nats", metavar="URL", help="use this NATS instead of starting one")
    args = p.parse_args()
    n = args.events
    with ExitStack() as stack:
        redis_url = args.redis or stack.enter_context(redis_server()).url + "/0"
        nats_url = args.nats or stack.enter_context(nats_server()).url
        contenders: dict[str, Case] = {}
        for kind, url in (("memory", ""), ("redis", redis_url), ("nats", nats_url)):
            contenders.update(cases(kind, url, n))
        header(
            "redis", "hiredis", "nats-py", method="method: wall time, median of interleaved rounds"
        )
        print(f"events per run: {n:,}; brokers: {redis_url}, {nats_url}\n")
        for case in contenders.values():
            timed(case)  # warm-up
        progress("warm-up done")
        seconds: dict[str, list[float]] = {name: [] for name in contenders}
        order_of = random.Random(args.seed)
        for r in range(args.rounds):
            order = list(contenders)
            order_of.shuffle(order)
            for name in order:
                seconds[name].append(timed(contenders[name]))
            progress(f"round {r + 1}/{args.rounds} done")
    rate = {name: n / statistics.median(v) for name, v in seconds.items()}
    print(f"  {'k events/s (wall)':60s} {'rate':>9s}")
    for name, value in rate.items():
        print(f"  {name:60s} {value / 1e3:9.1f}")
    print()
    for kind in ("memory", "redis", "nats"):
        batched = rate[f"{kind}: batched"]
        single = rate[f"{kind}: one write per event"]
        target = "" if kind == "memory" else "  (target >= 10x)"  # no round trip to save
        print(f"  {kind}: batched / one write per event {batched / single:8.1f}x{target}")
        floors = [name for name in rate if name.startswith(f"{kind}: broker floor")]
        if floors:
            ratio = batched / rate[floors[0]]
            print(f"  {kind}: batched / broker floor          {ratio:8.2f}x  (target >= 0.5x)")


if __name__ == "__main__":
    main()
