"""The in-process bus: each run's events in a list, read by any number of readers."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TypeVar

from reactivex import Observable

from ..events import JSON, Event, Workflow
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
)

__all__ = ["MemoryBus"]


_BATCH = 64  # entries handed to a reader at once
_SHARED = 128  # batches a log keeps to hand to the next readers that ask for them
_clock = time.monotonic  # when runs finish; a module name, so tests can turn the clock

_STATUS: dict[str, RunStatus] = {
    "completed": "completed",
    "failed": "failed",
    "canceled": "canceled",
}


class _Log:
    __slots__ = (
        "batches",
        "entries",
        "first_seq",
        "graph",
        "owner",
        "readers",
        "status",
        "thread_id",
        "waiters",
    )

    def __init__(
        self, graph: str, owner: str | None, thread_id: str | None, status: RunStatus
    ) -> None:
        self.graph = graph
        self.owner = owner
        self.thread_id = thread_id
        self.entries: list[Entry] = []
        self.first_seq = 0  # seq of entries[0]; grows when old entries are evicted
        self.status: RunStatus = status
        # One future per waiting reader, in arrival order (a dict as an ordered set).
        # Waking each reader's own future takes one step of the event loop; a shared
        # future behind shield() and wait_for() took three, per reader per append.
        self.waiters: dict[asyncio.Future[bool], None] = {}
        # The latest batches handed out, by first seq, the oldest first: a bound on
        # what sharing them costs, whatever positions the readers are at. Dropped
        # when the last reader leaves.
        self.batches: OrderedDict[int, _Batch] = OrderedDict()
        self.readers = 0

    def batch(self, index: int) -> _Batch:
        """Up to `_BATCH` entries from `entries[index]`, shared.

        The same batch object as the last reader that asked for them got, when
        it is still kept and as long.
        """
        entries = self.entries
        size = min(len(entries) - index, _BATCH)
        seq = self.first_seq + index
        batches = self.batches
        found = batches.pop(seq, None)
        if found is None or len(found) != size:
            found = _Batch(entries[index : index + size])  # a copy: appends go on
            if len(batches) >= _SHARED:
                batches.popitem(last=False)
        batches[seq] = found
        return found

    def notify(self) -> None:
        waiters = self.waiters
        if waiters:
            self.waiters = {}
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(True)

    async def wait(self, idle: float | None) -> bool:
        """Wait for new entries; False when `idle` seconds passed first."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        waiters = self.waiters
        waiters[waiter] = None
        timer = None if idle is None else loop.call_later(idle, _idle, waiter)
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            waiters.pop(waiter, None)  # still listed when idle or cancelled


def _idle(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class MemoryBus:
    """The in-process bus: each run's events in a list, readers with a cursor each.

    A reader holds only its position, so a slow reader costs no memory and
    never slows the run: it falls behind on the log and catches up later.
    It is a `WorkBus` too, within one process: a `Runtime(role="api")` and a
    `Runtime(role="worker")` on one `MemoryBus` hand runs over as they would
    across processes on Redis or NATS.

    Args:
        max_events: events kept per run; beyond it the oldest are evicted and a
            reader asking for them gets `HistoryGone` (HTTP 410).
        retention: seconds a finished run stays readable.
        max_runs: finished runs kept at most; the oldest go first.
    """

    def __init__(
        self, *, max_events: int = 1_000_000, retention: float = 3600.0, max_runs: int = 10_000
    ) -> None:
        if max_events < 1 or retention <= 0 or max_runs < 1:
            raise ValueError("max_events, retention and max_runs must be positive")
        self.max_events = max_events
        self.retention = retention
        self.max_runs = max_runs
        self._logs: dict[str, _Log] = {}
        # Finished runs in the order they finished, with the time: the oldest
        # first, so forgetting them looks at the front only, never at every run.
        self._finished: OrderedDict[str, float] = OrderedDict()
        self._jobs: asyncio.Queue[Job] | None = None
        self._cancels: set[str] = set()
        self._listeners: set[asyncio.Queue[str]] = set()
        self._answers: dict[str, dict[str, JSON]] = {}  # run id -> request id -> answer
        self._answer_listeners: set[asyncio.Queue[tuple[str, str, JSON]]] = set()
        self._leases: dict[str, float] = {}

    async def open(
        self,
        run_id: str,
        *,
        graph: str,
        owner: str | None,
        thread_id: str | None = None,
        status: RunStatus = "running",
    ) -> None:
        """Register a new run (and forget finished runs past `retention` or `max_runs`)."""
        self._purge()
        if run_id in self._logs:
            raise ValueError(f"run {run_id!r} already exists")
        self._logs[run_id] = _Log(graph, owner, thread_id, status)

    async def append(self, run_id: str, events: Sequence[Event]) -> None:
        """Add events to the run's log and wake its readers."""
        log = self._logs[run_id]
        entries = log.entries
        for event in events:
            entries.append(Entry(event))
            if (
                type(event) is Workflow
                and event.phase.is_terminal
                and event.run.parent_run_id is None
            ):
                log.status = _STATUS[event.phase.value]
                self._finished[run_id] = _clock()
                self._finished.move_to_end(run_id)
        overflow = len(entries) - self.max_events
        if overflow > 0:
            drop = max(overflow, self.max_events // 8)  # evict in chunks, not one by one
            del entries[:drop]
            log.first_seq += drop
        log.notify()

    async def read(
        self, run_id: str, after: int | None = None, *, heartbeat: float | None = None
    ) -> AsyncGenerator[Sequence[Entry], None]:
        """History after `after`, then live entries, in batches; ends after the root's end."""
        log = self._logs.get(run_id)
        if log is None:
            raise UnknownRun(run_id)
        position = 0 if after is None else after + 1  # the next seq to yield
        log.readers += 1
        try:
            while True:
                index = position - log.first_seq
                if index < 0:
                    raise HistoryGone(
                        f"events of run {run_id} before seq {log.first_seq} are no longer kept"
                    )
                if index < len(log.entries):
                    batch = log.batch(index)
                    position += len(batch)
                    yield batch
                    continue
                if log.status in FINISHED:
                    return
                if not await log.wait(heartbeat):
                    yield ()
        finally:
            log.readers -= 1
            if not log.readers:
                log.batches.clear()

    def sink(self, *, owner: str | None = None) -> BusSink:
        """A `Sink[Event]` that writes every run it is attached to onto this bus."""
        return BusSink(self, owner=owner)

    def events(self, run_id: str, after: int | None = None) -> Observable[Event]:
        """The run as a cold `Observable[Event]`: history after `after`, then live.

        Completes after the run's terminal event, errors with `RunFailed` after
        a failed one; `UnknownRun` and `HistoryGone` as `read` raises them.
        """
        return bus_events(self, run_id, after)

    def readers(self, run_id: str) -> int:
        """How many readers are reading the run right now (0 for an unknown run)."""
        log = self._logs.get(run_id)
        return 0 if log is None else log.readers

    async def record(self, run_id: str) -> RunRecord | None:
        """The run's record, or None."""
        log = self._logs.get(run_id)
        if log is None:
            return None
        return RunRecord(
            run_id=run_id,
            graph=log.graph,
            owner=log.owner,
            thread_id=log.thread_id,
            status=log.status,
            events=log.first_seq + len(log.entries),
            oldest=log.first_seq,
        )

    async def connect(self) -> None:
        """Nothing to connect to: the bus is in this process."""

    async def aclose(self) -> None:
        """Nothing to release."""

    async def set_status(self, run_id: str, status: RunStatus) -> None:
        """Record a run's status (a finished run keeps the status its end gave it)."""
        log = self._logs.get(run_id)
        if log is None:
            raise UnknownRun(run_id)
        if log.status not in FINISHED:
            log.status = status

    async def enqueue(self, job: Job) -> None:
        """Queue a run for a worker of this process."""
        self._queue().put_nowait(job)

    async def claim(self, wait: float, lease: float) -> Job | None:
        """The next queued run, leased for `lease` seconds; None after `wait` seconds."""
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
            # cancellation that comes as the item arrives.
            async with asyncio.timeout(wait):
                job = await self._queue().get()
        except TimeoutError:
            return None
        await self.renew((job.run_id,), lease)
        return job

    async def request_cancel(self, run_id: str) -> None:
        """Flag the run and tell every listener."""
        if run_id not in self._logs:
            raise UnknownRun(run_id)
        self._cancels.add(run_id)
        for listener in self._listeners:
            listener.put_nowait(run_id)

    async def cancel_requested(self, run_id: str) -> bool:
        """Whether the run was asked to cancel."""
        return run_id in self._cancels

    def cancel_requests(self) -> AsyncIterator[str]:
        """Run ids asked to cancel, from the time of the call on."""
        return _listen(self._listeners)

    async def post_answer(self, run_id: str, request_id: str, value: JSON) -> bool:
        """Keep the answer (once) and tell every listener."""
        if run_id not in self._logs:
            raise UnknownRun(run_id)
        kept = self._answers.setdefault(run_id, {})
        if request_id in kept:
            return False
        kept[request_id] = value
        for listener in self._answer_listeners:
            listener.put_nowait((run_id, request_id, value))
        return True

    async def posted_answer(self, run_id: str, request_id: str) -> tuple[bool, JSON]:
        """The answer kept for the request, if any."""
        kept = self._answers.get(run_id, {})
        return (True, kept[request_id]) if request_id in kept else (False, None)

    def answers(self) -> AsyncIterator[tuple[str, str, JSON]]:
        """Answers posted, from the time of the call on."""
        return _listen(self._answer_listeners)

    async def renew(self, run_ids: Sequence[str], ttl: float) -> None:
        """Hold the runs' leases for `ttl` more seconds."""
        until = _clock() + ttl
        for run_id in run_ids:
            self._leases[run_id] = until

    async def release(self, run_id: str) -> None:
        """Drop a run's lease."""
        self._leases.pop(run_id, None)
        self._cancels.discard(run_id)

    async def take_expired(self) -> list[str]:
        """The runs whose lease ran out (each handed out once)."""
        now = _clock()
        expired = [run_id for run_id, until in self._leases.items() if until < now]
        for run_id in expired:
            del self._leases[run_id]
        return expired

    def _queue(self) -> asyncio.Queue[Job]:
        if self._jobs is None:
            self._jobs = asyncio.Queue()
        return self._jobs

    def _purge(self) -> None:
        finished, logs = self._finished, self._logs
        # Finish times only grow along `finished`: the expired runs are a prefix.
        cutoff = _clock() - self.retention
        while finished:
            run_id, at = next(iter(finished.items()))
            if at >= cutoff:
                break
            del finished[run_id], logs[run_id]
            self._answers.pop(run_id, None)
        while len(finished) > self.max_runs:
            run_id, _ = finished.popitem(last=False)
            del logs[run_id]
            self._answers.pop(run_id, None)


_T = TypeVar("_T")


async def _listen(listeners: set[asyncio.Queue[_T]]) -> AsyncIterator[_T]:
    """What is put to the listeners, from the time of the call on."""
    listener: asyncio.Queue[_T] = asyncio.Queue()
    listeners.add(listener)
    try:
        while True:
            yield await listener.get()
    finally:
        listeners.discard(listener)
