"""`NatsBus`: runs on NATS JetStream, readable from any process (extra `nats`).

The layout is a wire contract (docs/transports/nats.md):

- stream `{stream}` (subjects `{prefix}.run.>`): one subject per root run,
  `{prefix}.run.{run_id}`; each message is one event's codec JSON with the
  header `Nats-Msg-Id: {run_id}:{seq}`; messages are kept `retention`
  seconds (the stream's `max_age`).
- key-value bucket `{stream}_RUNS`: `run.{run_id}` holds the run's record
  (JSON: `graph`, `owner`, `thread_id`, `status`, `cancel`, `answers`: the
  answer to each request, by request id, set once); a record
  unchanged for `retention` seconds expires (the executing process rewrites
  it with each lease renewal).
- key-value bucket `{stream}_LEASES`: `{run_id}` holds the end of the
  executing process's lease on the run (Unix time in seconds, as text).
- work-queue stream `{stream}_JOBS` (subject `{prefix}.jobs`), read by the
  durable pull consumer `workers`: one message per queued run (JSON).
- subject `{prefix}.cancel` (core NATS): a run id per cancel request.
- subject `{prefix}.answers` (core NATS): JSON `{"run_id", "request_id",
  "value"}` per answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from reactivex import Observable

from ..codec import DecodeError, dumps, loads
from ..events import JSON, Event
from ._io import BusSink, bus_events
from ._protocol import (
    FINISHED,
    Entry,
    HistoryGone,
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
    import nats
    from nats.errors import ConnectionClosedError, NoRespondersError, NoServersError
    from nats.errors import TimeoutError as NatsTimeoutError
    from nats.js import api
    from nats.js.errors import (
        KeyNotFoundError,
        KeyWrongLastSequenceError,
        NoKeysError,
        NoStreamResponseError,
        NotFoundError,
        ServiceUnavailableError,
    )
except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
    raise ImportError("NatsBus needs nats-py: pip install 'runstream[nats]'") from exc

__all__ = ["NatsBus"]

_log = logging.getLogger("runstream.buses.nats")

_READ = 512  # entries handed to a reader at once, at most
_IDLE_BLOCK = 5.0  # seconds a live read waits when the caller wants no heartbeat
_ACK_WAIT = 5.0  # seconds to wait for a batch's acks before publishing it again
T = TypeVar("T")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # what a run id may hold to be a subject token
# What a lost connection or a restarting server looks like: worth trying again.
_LOST = (
    NatsTimeoutError,
    ConnectionClosedError,
    NoRespondersError,  # JetStream not (yet) answering, as while a server restarts
    NoStreamResponseError,
    ServiceUnavailableError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


class NatsBus:
    """Runs on NATS JetStream: one subject per run, read from any process.

    Writes go out as a burst of async publishes per batch, each with the
    header `Nats-Msg-Id: {run_id}:{seq}`, so a batch published again after a
    lost connection or a broker restart is never duplicated (JetStream drops
    the repeats within its duplicate window); the run's emits wait for the
    acks (backpressure). Readers get history and live events through one
    ordered consumer, in batches, with idle heartbeats.

    Args:
        servers: a `nats://host:port` URL (several separated by commas).
        stream: the JetStream stream's name (the bus also uses
            `{stream}_RUNS` and `{stream}_JOBS`).
        prefix: the first token of every subject.
        retention: seconds events and finished runs' records are kept.

    Raises:
        ValueError: an empty name or a retention that is not positive.
    """

    def __init__(
        self,
        servers: str = "nats://127.0.0.1:4222",
        *,
        stream: str = "RUNSTREAM",
        prefix: str = "runstream",
        retention: float = 3600.0,
    ) -> None:
        if not _NAME.match(stream) or not _NAME.match(prefix):
            raise ValueError(
                f"stream and prefix must be letters, digits, - or _; got {stream!r}, {prefix!r}"
            )
        if not retention > 0:
            raise ValueError(f"retention must be a positive number of seconds, got {retention}")
        self.servers = [s.strip() for s in servers.split(",") if s.strip()]
        if not self.servers:
            raise ValueError("servers: at least one nats:// URL is needed")
        self.stream = stream
        self.prefix = prefix
        self.retention = retention
        self._nc: Any = None
        self._js: Any = None
        self._kv: Any = None
        self._checkpoints: Any = None
        self._leases: Any = None
        self._jobs: Any = None
        self._connecting: asyncio.Lock | None = None
        self._closed = False
        self._publishing: asyncio.Lock | None = asyncio.Lock()  # until the first publish

    def __repr__(self) -> str:
        return f"NatsBus({','.join(self.servers)!r}, stream={self.stream!r})"

    def subject(self, run_id: str) -> str:
        """The subject of the run's events."""
        return f"{self.prefix}.run.{run_id}"

    # --- connection ----------------------------------------------------------------

    async def connect(self) -> None:
        """Connect, and make the streams and the bucket if they are not there.

        Raises:
            ConnectionError: no NATS server answers at `servers` (named), or
                it has no JetStream (start it with `nats-server -js`).
        """
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._nc is not None:
                return
            where = ",".join(self.servers)
            # nats-py keeps retrying a first connection as long as later ones
            # (forever, here): a server nobody answers at is reported at once.
            if not await _any_answers(self.servers):
                raise ConnectionError(f"cannot reach NATS at {where}: no server answers")
            try:
                nc = await nats.connect(
                    self.servers,
                    connect_timeout=5,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.2,
                    error_cb=_quiet,
                    disconnected_cb=_nothing,
                    reconnected_cb=_nothing,
                )
            except (NoServersError, *_LOST) as exc:
                raise ConnectionError(f"cannot reach NATS at {where}: {exc!r}") from None
            try:
                js = nc.jetstream(timeout=_ACK_WAIT)
                await _ensure_stream(
                    js,
                    name=self.stream,
                    subjects=[f"{self.prefix}.run.>"],
                    max_age=self.retention,
                    storage=api.StorageType.FILE,
                    duplicate_window=min(120.0, self.retention),
                )
                await _ensure_stream(
                    js,
                    name=f"{self.stream}_JOBS",
                    subjects=[f"{self.prefix}.jobs"],
                    retention=api.RetentionPolicy.WORK_QUEUE,
                    storage=api.StorageType.FILE,
                )
                self._kv = await js.create_key_value(
                    bucket=f"{self.stream}_RUNS", ttl=self.retention, history=1
                )
                self._leases = await js.create_key_value(
                    bucket=f"{self.stream}_LEASES", ttl=self.retention, history=1
                )
                self._checkpoints = await js.create_key_value(
                    bucket=f"{self.stream}_CHECKPOINTS", history=1
                )
                self._jobs = await js.pull_subscribe(
                    f"{self.prefix}.jobs",
                    durable="workers",
                    stream=f"{self.stream}_JOBS",
                    # A job delivered to a fetch that had just timed out comes back
                    # after ack_wait: short, since a claim acks at once.
                    config=api.ConsumerConfig(ack_wait=2.0, max_deliver=-1),
                )
            except Exception as exc:
                await nc.close()
                raise ConnectionError(
                    f"NATS at {where} has no usable JetStream (run nats-server -js): {exc!r}"
                ) from None
            self._nc, self._js = nc, js

    async def aclose(self) -> None:
        """Drain and close the connection."""
        self._closed = True
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()

    async def _ready(self) -> Any:
        if self._nc is None:
            if self._closed:
                raise ConnectionError(f"{self!r} is closed")
            await self.connect()
        return self._js

    # --- records -------------------------------------------------------------------

    async def _get(self, run_id: str) -> tuple[dict[str, Any], int] | None:
        if not _NAME.match(run_id):
            return None
        await self._ready()
        try:
            entry = await self._kv.get(f"run.{run_id}")
        except (KeyNotFoundError, NotFoundError):
            return None
        if entry.value is None:
            return None
        return json.loads(entry.value), entry.revision

    async def _change(self, run_id: str, **fields: Any) -> bool:
        """Update fields of the run's record (compare-and-set); False for an unknown run."""
        while True:
            found = await self._get(run_id)
            if found is None:
                return False
            record, revision = found
            if fields.get("status") is not None and record["status"] in FINISHED:
                fields.pop("status")
            record.update(fields)
            try:
                await self._kv.update(f"run.{run_id}", json.dumps(record).encode(), last=revision)
                return True
            except KeyWrongLastSequenceError:
                continue  # changed meanwhile: read it again

    async def open(
        self,
        run_id: str,
        *,
        graph: str,
        owner: str | None,
        thread_id: str | None = None,
        status: RunStatus = "running",
    ) -> None:
        """Create the run's record."""
        if not _NAME.match(run_id):
            raise ValueError(f"run id {run_id!r}: only letters, digits, - and _ fit a subject")
        await self._ready()
        record = {"graph": graph, "owner": owner, "thread_id": thread_id, "status": status}
        try:
            await self._kv.create(f"run.{run_id}", json.dumps(record).encode())
        except KeyWrongLastSequenceError:
            raise ValueError(f"run {run_id!r} already exists") from None

    async def append(self, run_id: str, events: Sequence[Event]) -> None:
        """Publish the events as one burst and wait for every ack; again on a lost connection.

        Raises:
            ConnectionError: NATS could not be reached for 30 s.
        """
        if not events:
            return
        js = await self._ready()
        subject = self.subject(run_id)
        burst = [(dumps(e), {"Nats-Msg-Id": f"{run_id}:{e.seq}"}) for e in events]

        async def write() -> None:
            await _all_acked(await self._publish(js, subject, burst))

        await retried(
            write,
            _LOST,
            f"writing run {run_id} to NATS at {','.join(self.servers)} failed",
            warn=f"writing run {run_id} to NATS failed",
        )
        last = events[-1]
        if is_end(last):
            await self._retry(lambda: self._change(run_id, status=last.phase.value))
            await self.release(run_id)

    async def _publish(
        self, js: Any, subject: str, burst: list[tuple[bytes, dict[str, str]]]
    ) -> list[asyncio.Future[Any]]:
        """Publish a burst; the futures of its acks.

        `publish_async` is a coroutine returning the ack's future. nats-py makes
        the subscription for those acks on its first call, and two first calls
        at once (two runs starting together) make two, the second replacing the
        first: acks sent to the first are lost. So the first burst goes alone.
        """
        if self._publishing is not None:
            async with self._publishing:
                if self._publishing is not None:
                    acks = [await js.publish_async(subject, d, headers=h) for d, h in burst]
                    self._publishing = None
                    return acks
        return [await js.publish_async(subject, d, headers=h) for d, h in burst]

    async def _top_seq(self, run_id: str) -> int:
        """The seq of the run's last event; -1 when it has none."""
        return (await self._top(run_id))[0]

    async def _top(self, run_id: str) -> tuple[int, bool]:
        """The seq of the run's last event (-1 when it has none) and whether it ends the run."""
        js = await self._ready()
        try:
            msg = await js.get_last_msg(self.stream, self.subject(run_id))
        except NotFoundError:
            return -1, False
        last = loads(msg.data)
        return last.seq, is_end(last)

    async def _start_after(self, run_id: str, position: int) -> int:
        """The stream sequence to follow the run from: its first message after `position`.

        A binary search over the stream (the run's messages are in `seq`
        order among other runs'), so resuming late in a long run costs a few
        lookups, not a replay of its history. An unreadable message ends the
        search at the run's first message: the reader reaches it and names it.
        """
        js = await self._ready()
        subject = self.subject(run_id)

        async def at(seq: int) -> tuple[int, int]:  # first message of the run at or after seq
            msg = await js.get_msg(self.stream, seq=seq, subject=subject, next=True)
            return msg.seq, loads(msg.data).seq

        try:
            last = await js.get_last_msg(self.stream, subject)
        except NotFoundError:
            return 1  # no message yet: from the first that comes
        try:
            if loads(last.data).seq <= position:
                return int(last.seq) + 1
            low, low_seq = await at(1)
            if low_seq > position:
                return low
            found, limit = int(last.seq), int(last.seq)
            # Runs' messages at or before `low` are at or before `position`;
            # `found` is after it; none of the run's lie in [limit, found).
            while limit - low > 1:
                middle = (low + limit) // 2
                where, seq = await at(middle)
                if where >= limit:
                    limit = middle
                elif seq > position:
                    found = limit = where
                else:
                    low = where
            return found
        except DecodeError:
            return 1

    async def _over(
        self, run_id: str, position: int, found: tuple[dict[str, Any], int] | None = None
    ) -> bool:
        """Whether nothing will come after `position`: the run ended there or before.

        The run's end is in the stream before its record says so, so the last
        message decides; the record covers a run that ended with no events.
        The record is read first: one that says finished was written after
        every event, so the last message read next is the run's last.
        """
        if found is None:  # (a record the caller has just read will do)
            found = await self._retry(lambda: self._get(run_id))
        try:
            top, ended = await self._retry(lambda: self._top(run_id))
        except DecodeError:
            return False  # the reader reaches it and reports it, naming it
        if top > position:
            return False
        return ended or found is None or found[0]["status"] in FINISHED

    async def read(
        self, run_id: str, after: int | None = None, *, heartbeat: float | None = None
    ) -> AsyncGenerator[Sequence[Entry], None]:
        """History and live events through one ordered consumer, in batches.

        Raises:
            UnknownRun: no such run on this NATS (or it expired).
            DecodeError: a message that is not a runstream event (its stream
                sequence named).
        """
        found = await self._retry(lambda: self._get(run_id))
        if found is None:
            raise UnknownRun(run_id)
        position = -1 if after is None else after
        if await self._over(run_id, position, found):
            return
        js = await self._ready()
        inbox: list[Any] = []
        arrived = asyncio.Event()

        async def received(msg: Any) -> None:
            inbox.append(msg)
            arrived.set()

        async def follow() -> Any:
            start = await self._retry(lambda: self._start_after(run_id, position))
            return await js.subscribe(
                self.subject(run_id),
                stream=self.stream,
                cb=received,
                ordered_consumer=True,
                idle_heartbeat=2.0,
                config=api.ConsumerConfig(
                    deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start
                ),
            )

        sub = await follow()
        wait = heartbeat if heartbeat is not None else _IDLE_BLOCK
        try:
            while True:
                if not inbox:
                    arrived.clear()
                    try:
                        async with asyncio.timeout(wait):
                            await arrived.wait()
                    except TimeoutError:
                        if heartbeat is not None:
                            yield ()
                        if inbox:
                            continue
                        if await self._over(run_id, position):
                            return
                        # Idle: if the stream holds events this consumer has not
                        # delivered (it stalled), follow the run with a new one.
                        if await self._retry(lambda: self._top_seq(run_id)) > position:
                            _log.warning("run %s: the consumer stalled; following anew", run_id)
                            with contextlib.suppress(Exception):
                                await sub.unsubscribe()
                            inbox.clear()
                            sub = await follow()
                        continue
                taken, inbox[:] = inbox[:_READ], inbox[_READ:]
                out: list[Entry] = []
                ended = False
                for msg in taken:
                    try:
                        event = loads(msg.data)
                    except DecodeError as exc:
                        where = msg.metadata.sequence.stream
                        raise DecodeError(
                            f"message {where} of {self.stream} ({msg.subject}): {exc}"
                        ) from None
                    if event.seq <= position:
                        continue  # before the resume point (or a redelivery)
                    if event.seq != position + 1:  # aged out of the stream (max_age)
                        raise HistoryGone(
                            f"events of run {run_id} before seq {event.seq} are no longer kept"
                        )
                    out.append(Entry(event, msg.data))
                    position = event.seq
                    if is_end(event):
                        ended = True
                        break
                if out:
                    yield _Batch(out)
                if ended:
                    return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def record(self, run_id: str) -> RunRecord | None:
        """The run's record, or None."""
        found = await self._retry(lambda: self._get(run_id))
        if found is None:
            return None
        record = found[0]
        return RunRecord(
            run_id=run_id,
            graph=record["graph"],
            owner=record.get("owner"),
            thread_id=record.get("thread_id"),
            status=record["status"],
            events=await self._retry(lambda: self._top_seq(run_id)) + 1,
            oldest=await self._retry(lambda: self._oldest(run_id)),
        )

    async def _oldest(self, run_id: str) -> int:
        """The seq of the run's first message still kept (older ones aged out); 0 if none."""
        js = await self._ready()
        try:
            msg = await js.get_msg(self.stream, seq=1, subject=self.subject(run_id), next=True)
            return int(loads(msg.data).seq)
        except (NotFoundError, DecodeError):
            return 0

    def sink(self, *, owner: str | None = None) -> BusSink:
        """A `Sink[Event]` that writes every run it is attached to onto this bus."""
        return BusSink(self, owner=owner)

    def events(self, run_id: str, after: int | None = None) -> Observable[Event]:
        """The run as a cold `Observable[Event]`: history after `after`, then live."""
        return bus_events(self, run_id, after)

    # --- work between processes ----------------------------------------------------

    async def set_status(self, run_id: str, status: RunStatus) -> None:
        """Record a run's status, unless it has ended."""
        if not await self._retry(lambda: self._change(run_id, status=status)):
            raise UnknownRun(run_id)

    async def enqueue(self, job: Job) -> None:
        """Publish the run on the work-queue stream."""
        js = await self._ready()
        data = job.to_json()
        # One id for every retry of this call (JetStream drops the repeats); a
        # run handed back by a stopping worker is a new call, so a new message.
        headers = {"Nats-Msg-Id": f"job:{job.run_id}:{time.time_ns()}"}
        await self._retry(lambda: js.publish(f"{self.prefix}.jobs", data, headers=headers))

    async def claim(self, wait: float, lease: float) -> Job | None:
        """The next queued run (fetched from the `workers` consumer), leased, then acked."""
        await self._ready()
        try:
            msgs = await self._jobs.fetch(1, timeout=wait)
        except (TimeoutError, NatsTimeoutError):
            return None
        msg = msgs[0]
        try:
            job = Job.from_json(msg.data)
        except ValueError:
            _log.error("dropping a malformed job message: %r", msg.data[:200])
            await msg.ack()
            return None
        await self.renew((job.run_id,), lease)
        await msg.ack()
        return job

    async def request_cancel(self, run_id: str) -> None:
        """Flag the run's record and publish the request to every process."""
        if not await self._retry(lambda: self._change(run_id, cancel=True)):
            raise UnknownRun(run_id)
        await self._nc.publish(f"{self.prefix}.cancel", run_id.encode())

    async def cancel_requested(self, run_id: str) -> bool:
        """Whether the run's record carries a cancel request."""
        found = await self._get(run_id)
        return found is not None and bool(found[0].get("cancel"))

    async def cancel_requests(self) -> AsyncIterator[str]:
        """Run ids published on the cancel subject, from the time of the call on."""
        await self._ready()
        sub = await self._nc.subscribe(f"{self.prefix}.cancel")
        try:
            async for msg in sub.messages:
                cancelled_meanwhile()
                yield msg.data.decode()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    # --- checkpoints (a `Checkpointer`: `g.compile(checkpointer=bus)`) ---------------

    @staticmethod
    def checkpoint_key(key: str) -> str:
        """The KV key (bucket `{stream}_CHECKPOINTS`) of a checkpoint key.

        `c.` and the key in unpadded base64url: any thread id fits NATS's key rules.
        """
        return "c." + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")

    async def save_checkpoint(self, key: str, data: bytes) -> None:
        """Store `data` under `key`."""
        await self._ready()
        name = self.checkpoint_key(key)
        await self._retry(lambda: self._checkpoints.put(name, data))

    async def load_checkpoint(self, key: str) -> bytes | None:
        """What `key` holds, or None."""
        await self._ready()
        name = self.checkpoint_key(key)

        async def get() -> bytes | None:
            try:
                entry = await self._checkpoints.get(name)
            except KeyNotFoundError:
                return None
            return None if entry.value is None else bytes(entry.value)

        return await self._retry(get)

    async def delete_checkpoint(self, key: str) -> None:
        """Forget `key`."""
        await self._ready()
        name = self.checkpoint_key(key)

        async def delete() -> None:
            with contextlib.suppress(KeyNotFoundError):
                await self._checkpoints.purge(name)

        await self._retry(delete)

    async def claim_checkpoint(self, key: str, owner: str) -> str:
        """Hold `key` for `owner` unless held (KV create); return the holder."""
        await self._ready()
        name = self.checkpoint_key(key)

        async def claim() -> str:
            while True:
                try:
                    await self._checkpoints.create(name, owner.encode())
                    return owner
                except KeyWrongLastSequenceError:
                    pass
                try:
                    entry = await self._checkpoints.get(name)
                except KeyNotFoundError:
                    continue  # deleted meanwhile: try again
                if entry.value is not None:
                    return bytes(entry.value).decode()

        return await self._retry(claim)

    async def post_answer(self, run_id: str, request_id: str, value: JSON) -> bool:
        """Keep the answer in the run's record (once: compare-and-set) and publish it."""
        kept = await self._retry(lambda: self._keep_answer(run_id, request_id, value))
        if kept is None:
            raise UnknownRun(run_id)
        if not kept:
            return False
        message = {"run_id": run_id, "request_id": request_id, "value": value}
        await self._nc.publish(f"{self.prefix}.answers", json.dumps(message).encode())
        return True

    async def _keep_answer(self, run_id: str, request_id: str, value: JSON) -> bool | None:
        while True:
            found = await self._get(run_id)
            if found is None:
                return None
            record, revision = found
            answers = record.setdefault("answers", {})
            if request_id in answers:
                return False
            answers[request_id] = value
            try:
                await self._kv.update(f"run.{run_id}", json.dumps(record).encode(), last=revision)
                return True
            except KeyWrongLastSequenceError:
                continue  # changed meanwhile: read it again

    async def posted_answer(self, run_id: str, request_id: str) -> tuple[bool, JSON]:
        """The answer kept in the run's record, if any."""
        found = await self._get(run_id)
        answers = {} if found is None else found[0].get("answers") or {}
        return (True, answers[request_id]) if request_id in answers else (False, None)

    async def answers(self) -> AsyncIterator[tuple[str, str, JSON]]:
        """Answers published on the answers subject, from the time of the call on."""
        await self._ready()
        sub = await self._nc.subscribe(f"{self.prefix}.answers")
        try:
            async for msg in sub.messages:
                cancelled_meanwhile()
                posted = json.loads(msg.data)
                yield posted["run_id"], posted["request_id"], posted["value"]
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def renew(self, run_ids: Sequence[str], ttl: float) -> None:
        """Set each run's lease to end `ttl` seconds from now; keep its record fresh."""
        await self._ready()
        until = str(time.time() + ttl).encode()
        for run_id in run_ids:
            await self._leases.put(run_id, until)
            await self._change(run_id)  # rewritten: the record's age starts again

    async def release(self, run_id: str) -> None:
        """Drop the run's lease."""
        await self._ready()
        with contextlib.suppress(KeyNotFoundError, NotFoundError):
            await self._leases.delete(run_id)

    async def take_expired(self) -> list[str]:
        """The runs whose lease ended; a compare-and-delete hands each to one process."""
        await self._ready()
        try:
            keys = await self._leases.keys()
        except NoKeysError:
            return []
        now = time.time()
        taken = []
        for key in keys:
            try:
                entry = await self._leases.get(key)
            except (KeyNotFoundError, NotFoundError):
                continue
            if entry.value is None or float(entry.value) >= now:
                continue
            try:
                await self._leases.delete(key, last=entry.revision)
            except KeyWrongLastSequenceError:
                continue  # renewed, or taken by another process
            taken.append(key)
        return taken

    async def _retry(self, call: Callable[[], Awaitable[T]]) -> T:
        """`await call()`, retried through a lost connection for up to 30 s."""
        return await retried(call, _LOST, f"NATS at {','.join(self.servers)} unreachable")


async def _all_acked(acks: list[asyncio.Future[Any]]) -> None:
    """Wait for every ack of a burst; raise the first failure, leaving none unread.

    Every future is awaited or cancelled, so that a failed burst (a server
    restarting answers many publishes with errors) leaves no "exception never
    retrieved" behind.
    """
    try:
        async with asyncio.timeout(_ACK_WAIT):
            results = await asyncio.gather(*acks, return_exceptions=True)
    except BaseException:
        for ack in acks:
            if ack.done():
                if not ack.cancelled():
                    ack.exception()
            else:
                ack.cancel()
        raise
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _any_answers(servers: Sequence[str]) -> bool:
    """Whether a TCP connection to one of the servers opens within 5 s."""
    for server in servers:
        parts = urlsplit(server if "://" in server else f"nats://{server}")
        try:
            async with asyncio.timeout(5.0):
                _, writer = await asyncio.open_connection(parts.hostname, parts.port or 4222)
        except (OSError, TimeoutError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


async def _ensure_stream(js: Any, **config: Any) -> None:
    try:
        await js.add_stream(**config)
    except Exception:  # there with another configuration: bring it to this one
        await js.update_stream(**config)


async def _quiet(exc: Exception) -> None:
    _log.debug("NATS connection: %r", exc)


async def _nothing() -> None:
    return None
