"""The documented layouts, read with the brokers' own clients and no runstream code.

docs/transports/redis.md and docs/transports/nats.md promise these keys,
subjects, ids and headers to services written in any language.
"""

from __future__ import annotations

import json

import nats
import pytest
import redis.asyncio as redis

import runstream as rs
from _support.apps import graphs

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def a_finished_run(bus: rs.buses.WorkBus) -> tuple[str, list[bytes]]:
    """Run the ticker on `bus`; its id and its events as runstream encoded them."""
    async with rs.Runtime(graphs, bus=bus) as rt:
        run_id = await rt.start("ticker", {"n": 25}, thread_id="th", owner="ann")
        events = [e async for e in rt.events(run_id)]
    return run_id, [rs.codec.dumps(e) for e in events]


async def test_a_run_on_redis_reads_with_plain_xrange_and_xread(redis_url: str) -> None:
    bus = rs.RedisBus(redis_url, prefix="wire")
    run_id, encoded = await a_finished_run(bus)
    await bus.aclose()

    client = redis.Redis.from_url(redis_url)
    try:
        entries = await client.xrange(f"wire:run:{run_id}")
        assert [entry_id for entry_id, _ in entries] == [
            f"0-{seq + 1}".encode() for seq in range(len(encoded))
        ]
        assert [fields[b"event"] for _, fields in entries] == encoded
        # resume after seq 9: XREAD after entry id 0-10
        tail = await client.xread({f"wire:run:{run_id}": "0-10"})
        assert [fields[b"event"] for _, fields in tail[0][1]] == encoded[10:]
        record = await client.hgetall(f"wire:record:{run_id}")
        assert record[b"graph"] == b"ticker"
        assert record[b"owner"] == b"ann"
        assert record[b"thread_id"] == b"th"
        assert record[b"status"] == b"completed"
        assert int(record[b"events"]) == len(encoded)
        assert 0 < await client.ttl(f"wire:run:{run_id}") <= 3600  # retention runs
    finally:
        await client.aclose()


async def test_a_run_on_nats_reads_with_a_plain_jetstream_consumer(nats_url: str) -> None:
    bus = rs.NatsBus(nats_url, stream="WIRE", prefix="wire")
    run_id, encoded = await a_finished_run(bus)
    await bus.aclose()

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(f"wire.run.{run_id}", ordered_consumer=True)
        got, ids = [], []
        while len(got) < len(encoded):
            msg = await sub.next_msg(timeout=5)
            got.append(msg.data)
            ids.append(msg.headers["Nats-Msg-Id"])
        assert got == encoded
        assert ids == [f"{run_id}:{seq}" for seq in range(len(encoded))]
        await sub.unsubscribe()
        kv = await js.key_value("WIRE_RUNS")
        record = json.loads((await kv.get(f"run.{run_id}")).value)
        assert record == {
            "graph": "ticker",
            "owner": "ann",
            "thread_id": "th",
            "status": "completed",
        }
    finally:
        await nc.close()


async def test_answers_on_redis_are_a_record_field_and_a_channel(redis_url: str) -> None:
    bus = rs.RedisBus(redis_url, prefix="wans")
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await bus.open("r-1", graph="booker", owner=None)
        await pubsub.subscribe("wans:answers")
        assert await bus.post_answer("r-1", "ask_1", {"at": "noon"})
        message = None
        while message is None:
            message = await pubsub.get_message(timeout=5)
        assert json.loads(message["data"]) == {
            "run_id": "r-1",
            "request_id": "ask_1",
            "value": {"at": "noon"},
        }
        kept = await client.hget("wans:record:r-1", "answer:ask_1")
        assert kept is not None
        assert json.loads(kept) == {"at": "noon"}
    finally:
        await pubsub.aclose()
        await client.aclose()
        await bus.aclose()


async def test_answers_on_nats_are_in_the_record_and_on_a_subject(nats_url: str) -> None:
    bus = rs.NatsBus(nats_url, stream="WANS", prefix="wans")
    nc = await nats.connect(nats_url)
    try:
        await bus.open("r-1", graph="booker", owner=None)
        sub = await nc.subscribe("wans.answers")
        assert await bus.post_answer("r-1", "ask_1", ["Oslo"])
        msg = await sub.next_msg(timeout=5)
        assert json.loads(msg.data) == {"run_id": "r-1", "request_id": "ask_1", "value": ["Oslo"]}
        kv = await nc.jetstream().key_value("WANS_RUNS")
        record = json.loads((await kv.get("run.r-1")).value)
        assert record["answers"] == {"ask_1": ["Oslo"]}
    finally:
        await nc.close()
        await bus.aclose()


async def test_a_corrupt_entry_written_by_someone_else_is_a_decode_error_naming_it(
    redis_url: str,
) -> None:
    bus = rs.RedisBus(redis_url, prefix="corrupt")
    await bus.open("r1", graph="g", owner=None)
    client = redis.Redis.from_url(redis_url)
    try:
        await client.xadd("corrupt:run:r1", {"event": b"{not json"}, id="0-1")
    finally:
        await client.aclose()
    with pytest.raises(rs.DecodeError, match="entry 0-1 of corrupt:run:r1"):
        [e async for e in bus.events("r1")]
    await bus.aclose()
