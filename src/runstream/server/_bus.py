"""The run bus: where a server keeps each run's events for any number of readers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Literal, Protocol, runtime_checkable

import attrs

from ..codec import dumps
from ..events import Event, Workflow

__all__ = ["Entry", "HistoryGone", "MemoryBus", "RunBus", "RunRecord", "RunStatus"]

RunStatus = Literal["running", "completed", "failed", "canceled"]


class HistoryGone(LookupError):
    """The events after the requested position are no longer kept."""


class Entry:
    """One event on the bus, with its wire form encoded once for every reader."""

    __slots__ = ("data", "event", "seq")

    def __init__(self, event: Event, data: bytes | None = None) -> None:
        self.event = event
        self.seq = event.seq
        self.data = dumps(event) if data is None else data


@attrs.frozen
class RunRecord:
    """What the bus knows about a run.

    Attributes:
        events: how many events the run has emitted (the next seq).
        oldest: the seq of the oldest event still kept (0 until eviction).
    """

    run_id: str
    graph: str
    owner: str | None
    status: RunStatus
    events: int
    oldest: int = 0


@runtime_checkable
class RunBus(Protocol):
    """Keeps each run's events and serves them to readers.

    Small and transport-neutral on purpose: an in-memory list, a Redis stream
    or a NATS JetStream subject can all do this.
    """

    async def open(self, run_id: str, *, graph: str, owner: str | None) -> None:
        """Register a new run before its first event."""

    async def append(self, run_id: str, events: Sequence[Event]) -> None:
        """Add events (in `seq` order) to a run's log."""

    def read(
        self, run_id: str, after: int | None = None, *, heartbeat: float | None = None
    ) -> AsyncIterator[Sequence[Entry]]:
        """The run's entries after `after` (all when None): history, then live.

        Entries come in batches (whatever is there when the reader asks), so a
        transport can write several in one go. Ends after the root run's
        terminal event. Yields an empty batch after `heartbeat` idle seconds,
        so a transport can send keep-alives.

        Raises:
            KeyError: no such run.
            HistoryGone: the entries after `after` were evicted.
        """

    async def record(self, run_id: str) -> RunRecord | None:
        """The run's record, or None if the bus does not know it."""


_BATCH = 64  # entries handed to a reader at once

_STATUS: dict[str, RunStatus] = {
    "completed": "completed",
    "failed": "failed",
    "canceled": "canceled",
}


class _Log:
    __slots__ = ("changed", "entries", "finished_at", "first_seq", "graph", "owner", "status")

    def __init__(self, graph: str, owner: str | None) -> None:
        self.graph = graph
        self.owner = owner
        self.entries: list[Entry] = []
        self.first_seq = 0  # seq of entries[0]; grows when old entries are evicted
        self.status: RunStatus = "running"
        self.finished_at: float | None = None
        self.changed: asyncio.Future[None] | None = None

    def notify(self) -> None:
        changed = self.changed
        if changed is not None:
            self.changed = None
            if not changed.done():
                changed.set_result(None)

    async def wait(self, idle: float | None) -> bool:
        """Wait for new entries; False when `idle` seconds passed first."""
        if self.changed is None:
            self.changed = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self.changed), idle)
        except TimeoutError:
            return False
        return True


class MemoryBus:
    """The in-process bus: each run's events in a list, readers with a cursor each.

    A reader holds only its position, so a slow reader costs no memory and
    never slows the run: it falls behind on the log and catches up later.

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

    async def open(self, run_id: str, *, graph: str, owner: str | None) -> None:
        """Register a new run (and forget finished runs past their retention)."""
        self._purge()
        if run_id in self._logs:
            raise ValueError(f"run {run_id!r} already exists")
        self._logs[run_id] = _Log(graph, owner)

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
                log.finished_at = time.monotonic()
        overflow = len(entries) - self.max_events
        if overflow > 0:
            drop = max(overflow, self.max_events // 8)  # evict in chunks, not one by one
            del entries[:drop]
            log.first_seq += drop
        log.notify()

    async def read(
        self, run_id: str, after: int | None = None, *, heartbeat: float | None = None
    ) -> AsyncIterator[Sequence[Entry]]:
        """History after `after`, then live entries, in batches; ends after the root's end."""
        log = self._logs.get(run_id)
        if log is None:
            raise KeyError(run_id)
        position = 0 if after is None else after + 1  # the next seq to yield
        while True:
            index = position - log.first_seq
            if index < 0:
                raise HistoryGone(
                    f"events of run {run_id} before seq {log.first_seq} are no longer kept"
                )
            if index < len(log.entries):
                # A bounded copy: appends and evictions go on meanwhile, and a reader
                # far behind never holds more than one batch of references.
                batch = log.entries[index : index + _BATCH]
                position += len(batch)
                yield batch
                continue
            if log.status != "running":
                return
            if not await log.wait(heartbeat):
                yield ()

    async def record(self, run_id: str) -> RunRecord | None:
        """The run's record, or None."""
        log = self._logs.get(run_id)
        if log is None:
            return None
        return RunRecord(
            run_id=run_id,
            graph=log.graph,
            owner=log.owner,
            status=log.status,
            events=log.first_seq + len(log.entries),
            oldest=log.first_seq,
        )

    def _purge(self) -> None:
        now = time.monotonic()
        finished = [
            (log.finished_at, run_id)
            for run_id, log in self._logs.items()
            if log.finished_at is not None
        ]
        expired = {run_id for at, run_id in finished if now - at > self.retention}
        excess = len(finished) - len(expired) - self.max_runs
        if excess > 0:
            alive = sorted((at, r) for at, r in finished if r not in expired)
            expired.update(r for _, r in alive[:excess])
        for run_id in expired:
            del self._logs[run_id]
