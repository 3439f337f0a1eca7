"""`RedisBus`: runs on Redis Streams, readable from any process (extra `redis`).

The layout is a wire contract (docs/transports/redis.md): a service in any
language can read a run with `XRANGE` / `XREAD`.

- `{prefix}:run:{run_id}`: a stream per root run; entry id `0-{seq+1}`, one
  field `event` holding the event's codec JSON.
- `{prefix}:record:{run_id}`: a hash: `graph`, `owner`, `thread_id` (absent
  when None), `status`, `events` (the next seq), `cancel` (`1` once a cancel
  was asked for), `answer:{request_id}` (the JSON answer to a request, set
  once).
- `{prefix}:queue`: a stream of queued runs (field `job`, JSON), read by the
  consumer group `workers`.
- `{prefix}:leases`: a sorted set, run id -> the lease's end (Redis server
  time in milliseconds).
- `{prefix}:cancel`: a pub/sub channel; the message is a run id.
- `{prefix}:answers`: a pub/sub channel; the message is JSON
  `{"run_id", "request_id", "value"}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from reactivex import Observable

from ..codec import DecodeError, dumps, loads
from ..events import JSON, Event, Workflow
from ._io import BusSink, bus_events
from ._protocol import (
    FINISHED,
    Entry,
    Job,
    RunRecord,
    RunStatus,
    UnknownRun,
    _Batch,
    cancelled_meanwhile,
    is_end,
    retried,
)

try:
    import redis.asyncio as redis
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ResponseError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
    raise ImportError("RedisBus needs redis-py: pip install 'runstream[redis]'") from exc

__all__ = ["RedisBus"]

_log = logging.getLogger("runstream.buses.redis")
T = TypeVar("T")

_READ = 512  # entries per XRANGE / XREAD
_IDLE_BLOCK = 5.0  # seconds a live read blocks when the caller wants no heartbeat
_GROUP = "workers"
_LOST = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)

# Sets a run's status unless it has ended already (its end decides it).
_SET_STATUS = """
local s = redis.call('HGET', KEYS[1], 'status')
if not s then return -1 end
if s == 'completed' or s == 'failed' or s == 'canceled' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
return 1
"""


class RedisBus:
    """Runs on Redis Streams: one stream per run, read from any process.

    Writes go in one pipeline per batch, with explicit entry ids
    (`0-{seq+1}`), so a write retried after a lost connection never
    duplicates an event; while a write waits for Redis, the run's emits
    wait too (backpressure). Readers get history by `XRANGE`, then live
    entries by blocking `XREAD`, in batches, and reconnect by themselves.
    A finished run's keys expire after `retention` seconds.

    Args:
        url: a `redis://` or `rediss://` URL (`redis://host:port/db`,
            password in the URL if needed).
        prefix: the first part of every key, so that several apps can share
            one Redis.
        retention: seconds a finished run stays readable.

    Raises:
        ValueError: a URL redis-py cannot parse, an empty prefix, or a
            retention that is not positive.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "runstream",
        retention: float = 3600.0,
    ) -> None:
        if not prefix:
            raise ValueError("prefix must not be empty")
        if not retention > 0:
            raise ValueError(f"retention must be a positive number of seconds, got {retention}")
        try:
            self._redis: Any = redis.Redis.from_url(
                url, socket_connect_timeout=5.0, health_check_interval=30
            )
        except (ValueError, TypeError) as exc:
            raise ValueError(f"bad Redis URL {_shown_url(url)!r}: {exc}") from None
        self.url = url
        self.prefix = prefix
        self.retention = retention
        self._ttl_ms = max(1, int(retention * 1000))
        self._queue_key = f"{prefix}:queue"
        self._leases_key = f"{prefix}:leases"
        self._channel = f"{prefix}:cancel"
        self._answers_channel = f"{prefix}:answers"
        self._consumer = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._set_status = self._redis.register_script(_SET_STATUS)

    def __repr__(self) -> str:
        return f"RedisBus({_shown_url(self.url)!r}, prefix={self.prefix!r})"

    # --- keys ----------------------------------------------------------------------

    def stream_key(self, run_id: str) -> str:
        """The key of the run's stream of events."""
        return f"{self.prefix}:run:{run_id}"

    def record_key(self, run_id: str) -> str:
        """The key of the run's record hash."""
        return f"{self.prefix}:record:{run_id}"

    # --- connection ----------------------------------------------------------------

    async def connect(self) -> None:
        """Check that Redis answers, and make the workers' consumer group.

        Raises:
            ConnectionError: Redis cannot be reached at `url` (named in the message).
        """
        try:
            await self._redis.ping()
            await self._redis.xgroup_create(self._queue_key, _GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        except _LOST as exc:
            raise ConnectionError(f"cannot reach Redis at {_shown_url(self.url)}: {exc}") from None

    async def aclose(self) -> None:
        """Close every connection of the pool."""
        await self._redis.aclose()

    # --- runs ----------------------------------------------------------------------

    async def open(
        self,
        run_id: str,
        *,
        graph: str,
        owner: str | None,
        thread_id: str | None = None,
        status: RunStatus = "running",
    ) -> None:
        """Write the run's record (status `running`, or `queued` for a worker)."""
        fields: dict[str, str | int] = {"graph": graph, "status": status, "events": 0}
        if owner is not None:
            fields["owner"] = owner
        if thread_id is not None:
            fields["thread_id"] = thread_id
        key = self.record_key(run_id)
        created = await self._retry(lambda: self._redis.hsetnx(key, "graph", graph))
        if not created:
            raise ValueError(f"run {run_id!r} already exists")
        await self._retry(lambda: self._redis.hset(key, mapping=fields))

    async def append(self, run_id: str, events: Sequence[Event]) -> None:
        """Add events in one pipeline; retried through a lost connection, never duplicated.

        Raises:
            ConnectionError: Redis could not be reached for 30 s.
            RuntimeError: these seqs are on the stream already, written by
                another process (which ended the run: `WorkerLost`).
        """
        if not events:
            return
        stream, record = self.stream_key(run_id), self.record_key(run_id)
        encoded = [(event, dumps(event)) for event in events]
        end: Workflow | None = None
        for event, _ in encoded:
            if is_end(event):
                end = event
        todo = encoded
        tries = 0

        async def write() -> None:
            nonlocal todo, tries
            if tries:  # what is there already is not written again
                top = await self._top_seq(stream)
                todo = [(e, d) for e, d in encoded if e.seq > top]
            tries += 1
            await self._write(stream, record, todo, end)

        try:
            await retried(
                write,
                _LOST,
                f"writing run {run_id} to Redis at {_shown_url(self.url)} failed",
                warn=f"writing run {run_id} to Redis failed",
            )
        except ResponseError as exc:
            if "equal or smaller" not in str(exc):
                raise
            raise RuntimeError(
                f"run {run_id}: seq {todo[0][0].seq} is on the bus already, written by "
                "another process (the run was ended there)"
            ) from None

    async def _write(
        self,
        stream: str,
        record: str,
        todo: list[tuple[Event, bytes]],
        end: Workflow | None,
    ) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for event, data in todo:
            pipe.xadd(stream, {"event": data}, id=f"0-{event.seq + 1}")
        if todo:
            pipe.hset(record, "events", todo[-1][0].seq + 1)
        if end is not None:
            pipe.hset(record, "status", end.phase.value)
            pipe.pexpire(stream, self._ttl_ms)
            pipe.pexpire(record, self._ttl_ms)
            pipe.zrem(self._leases_key, end.run_id)
        await pipe.execute()

    async def _top_seq(self, stream: str) -> int:
        """The seq of the stream's last entry; -1 when it has none."""
        last = await self._redis.xrevrange(stream, count=1)
        if not last:
            return -1
        return int(last[0][0].split(b"-")[1]) - 1

    async def read(
        self, run_id: str, after: int | None = None, *, heartbeat: float | None = None
    ) -> AsyncGenerator[Sequence[Entry], None]:
        """History by `XRANGE`, then live entries by blocking `XREAD`, in batches.

        Reconnects by itself after a lost connection and goes on from where
        it was. Ends after the root run's terminal event.

        Raises:
            UnknownRun: no such run on this Redis (or it expired).
            DecodeError: an entry that is not a runstream event (its id named).
        """
        stream, record = self.stream_key(run_id), self.record_key(run_id)
        if not await self._retry(lambda: self._redis.exists(record)):
            raise UnknownRun(run_id)
        position = -1 if after is None else after  # the last seq handed out
        block = int(1000 * (heartbeat if heartbeat is not None else _IDLE_BLOCK))
        live = False
        delay = 0.05
        while True:
            try:
                if not live:
                    found = await self._redis.xrange(stream, min=f"(0-{position + 1}", count=_READ)
                    if len(found) < _READ:
                        live = True
                    rows = found
                else:
                    answer = await self._redis.xread(
                        {stream: f"0-{position + 1}"}, count=_READ, block=block
                    )
                    cancelled_meanwhile()
                    rows = answer[0][1] if answer else []
                delay = 0.05
            except _LOST as exc:
                _log.warning("reading run %s from Redis failed (%s); retrying", run_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if rows:
                batch, ended = _entries(stream, rows)
                position = batch[-1].seq
                yield batch
                if ended:
                    return
                continue
            state = await self._retry(lambda: self._redis.hmget(record, "status", "events"))
            status, count = state
            if status is None:
                return  # expired meanwhile
            if status.decode() in FINISHED and int(count or 0) <= position + 1:
                return
            if live and heartbeat is not None:
                yield ()

    async def record(self, run_id: str) -> RunRecord | None:
        """The run's record, or None."""
        fields = await self._retry(lambda: self._redis.hgetall(self.record_key(run_id)))
        if not fields or b"status" not in fields:
            return None
        text = {k.decode(): v.decode() for k, v in fields.items()}
        return RunRecord(
            run_id=run_id,
            graph=text["graph"],
            owner=text.get("owner"),
            thread_id=text.get("thread_id"),
            status=text["status"],
            events=int(text.get("events", 0)),
        )

    def sink(self, *, owner: str | None = None) -> BusSink:
        """A `Sink[Event]` that writes every run it is attached to onto this bus."""
        return BusSink(self, owner=owner)

    def events(self, run_id: str, after: int | None = None) -> Observable[Event]:
        """The run as a cold `Observable[Event]`: history after `after`, then live."""
        return bus_events(self, run_id, after)

    # --- work between processes ----------------------------------------------------

    async def set_status(self, run_id: str, status: RunStatus) -> None:
        """Record a run's status, unless it has ended."""
        key = self.record_key(run_id)
        done = await self._retry(lambda: self._set_status(keys=[key], args=[status]))
        if done == -1:
            raise UnknownRun(run_id)

    async def enqueue(self, job: Job) -> None:
        """Add the run to the queue stream."""
        body = job.to_json()
        await self._retry(lambda: self._redis.xadd(self._queue_key, {"job": body}))

    async def claim(self, wait: float, lease: float) -> Job | None:
        """The next queued run for this process (or one a dead worker took and never leased)."""
        idle = max(1, int(lease * 1000))
        stale = await self._redis.xautoclaim(
            self._queue_key, _GROUP, self._consumer, idle, "0-0", count=1
        )
        rows = stale[1] if stale and len(stale) > 1 else []
        if not rows:
            answer = await self._redis.xreadgroup(
                _GROUP,
                self._consumer,
                {self._queue_key: ">"},
                count=1,
                block=max(1, int(wait * 1000)),
            )
            rows = answer[0][1] if answer else []
        if not rows:
            return None
        entry_id, fields = rows[0]
        try:
            job: Job | None = Job.from_json(fields.get(b"job", b""))
        except ValueError:
            _log.error("dropping a malformed queue entry %s: %r", entry_id, fields)
            job = None
        if job is not None:
            await self.renew((job.run_id,), lease)
        pipe = self._redis.pipeline(transaction=False)
        pipe.xack(self._queue_key, _GROUP, entry_id)
        pipe.xdel(self._queue_key, entry_id)
        await pipe.execute()
        return job

    async def request_cancel(self, run_id: str) -> None:
        """Flag the run's record and publish the request to every process."""
        key = self.record_key(run_id)
        if not await self._retry(lambda: self._redis.exists(key)):
            raise UnknownRun(run_id)
        await self._retry(lambda: self._redis.hset(key, "cancel", 1))
        await self._retry(lambda: self._redis.publish(self._channel, run_id))

    async def cancel_requested(self, run_id: str) -> bool:
        """Whether the run's record carries a cancel request."""
        flag = await self._redis.hget(self.record_key(run_id), "cancel")
        return flag is not None

    async def cancel_requests(self) -> AsyncIterator[str]:
        """Run ids published on the cancel channel, from the time of the call on."""
        async for data in self._messages(self._channel):
            yield data.decode()

    async def _messages(self, channel: str) -> AsyncIterator[bytes]:
        """What is published on `channel`, from the time of the call on."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            while True:
                message = await pubsub.get_message(timeout=_IDLE_BLOCK)
                cancelled_meanwhile()
                if message is not None and message["type"] == "message":
                    yield message["data"]
        finally:
            await pubsub.aclose()

    async def post_answer(self, run_id: str, request_id: str, value: JSON) -> bool:
        """Keep the answer in the run's record (once: `HSETNX`) and publish it."""
        key = self.record_key(run_id)
        if not await self._retry(lambda: self._redis.exists(key)):
            raise UnknownRun(run_id)
        text = json.dumps(value)
        field = f"answer:{request_id}"
        if not await self._retry(lambda: self._redis.hsetnx(key, field, text)):
            return False
        message = json.dumps({"run_id": run_id, "request_id": request_id, "value": value})
        await self._retry(lambda: self._redis.publish(self._answers_channel, message))
        return True

    async def posted_answer(self, run_id: str, request_id: str) -> tuple[bool, JSON]:
        """The answer kept in the run's record, if any."""
        found = await self._redis.hget(self.record_key(run_id), f"answer:{request_id}")
        return (False, None) if found is None else (True, json.loads(found))

    async def answers(self) -> AsyncIterator[tuple[str, str, JSON]]:
        """Answers published on the answers channel, from the time of the call on."""
        async for data in self._messages(self._answers_channel):
            posted = json.loads(data)
            yield posted["run_id"], posted["request_id"], posted["value"]

    async def renew(self, run_ids: Sequence[str], ttl: float) -> None:
        """Set each run's lease to end `ttl` seconds from now (Redis server time)."""
        if not run_ids:
            return
        until = await self._now_ms() + int(ttl * 1000)
        await self._redis.zadd(self._leases_key, dict.fromkeys(run_ids, until))

    async def release(self, run_id: str) -> None:
        """Drop the run's lease."""
        await self._redis.zrem(self._leases_key, run_id)

    async def take_expired(self) -> list[str]:
        """The runs whose lease ended; `ZREM` hands each to one process only."""
        now = await self._now_ms()
        expired = await self._redis.zrangebyscore(self._leases_key, "-inf", now)
        taken = []
        for raw in expired:
            if await self._redis.zrem(self._leases_key, raw):
                taken.append(raw.decode())
        return taken

    async def _now_ms(self) -> int:
        seconds, micros = await self._redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    # --- checkpoints (a `Checkpointer`: `g.compile(checkpointer=bus)`) ---------------

    def checkpoint_key(self, key: str) -> str:
        """The Redis key of a checkpoint key (`run/{id}`, `thread/{id}`, `lock/{id}`)."""
        return f"{self.prefix}:ckpt:{key}"

    async def save_checkpoint(self, key: str, data: bytes) -> None:
        """Store `data` under `key` (a plain string key, kept until deleted)."""
        name = self.checkpoint_key(key)
        await self._retry(lambda: self._redis.set(name, data))

    async def load_checkpoint(self, key: str) -> bytes | None:
        """What `key` holds, or None."""
        name = self.checkpoint_key(key)
        found: bytes | None = await self._retry(lambda: self._redis.get(name))
        return found

    async def delete_checkpoint(self, key: str) -> None:
        """Forget `key`."""
        name = self.checkpoint_key(key)
        await self._retry(lambda: self._redis.delete(name))

    async def claim_checkpoint(self, key: str, owner: str) -> str:
        """Hold `key` for `owner` unless held (`SET NX`); return the holder."""
        name = self.checkpoint_key(key)

        async def claim() -> bytes:
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(name, owner, nx=True)
            pipe.get(name)
            _, holder = await pipe.execute()
            return bytes(holder)

        return (await self._retry(claim)).decode()

    async def _retry(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call()`, retried through a lost connection for up to 30 s."""
        return await retried(call, _LOST, f"Redis at {_shown_url(self.url)} unreachable")


def _entries(stream: str, rows: list[tuple[bytes, dict[bytes, bytes]]]) -> tuple[_Batch, bool]:
    """Decode stream entries; whether the batch holds the root run's end (cut there)."""
    out: list[Entry] = []
    for entry_id, fields in rows:
        data = fields.get(b"event")
        try:
            if data is None:
                raise DecodeError("no field 'event'")
            event = loads(data)
        except DecodeError as exc:
            raise DecodeError(f"entry {entry_id.decode()} of {stream}: {exc}") from None
        out.append(Entry(event, data))
        if is_end(event):
            return _Batch(out), True
    return _Batch(out), False


def _shown_url(url: str) -> str:
    """The URL without its password."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    auth, _, host = rest.rpartition("@")
    user = auth.partition(":")[0]
    return f"{scheme}{sep}{user + ':***' if user else '***'}@{host}"
