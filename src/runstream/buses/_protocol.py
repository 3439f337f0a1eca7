"""The run bus protocol: what any bus keeps of a run, and how readers get it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Literal, Protocol, runtime_checkable

import attrs

from ..codec import dumps
from ..events import Event

__all__ = [
    "Entry",
    "HistoryGone",
    "RunBus",
    "RunRecord",
    "RunStatus",
    "UnknownRun",
    "sse_frames",
]

RunStatus = Literal["running", "completed", "failed", "canceled"]


class HistoryGone(LookupError):
    """The events after the requested position are no longer kept."""


class UnknownRun(KeyError):
    """The bus does not know the run (never started, or forgotten after `retention`).

    A `KeyError` (so a `LookupError`), whose first argument is the run id.
    """

    def __str__(self) -> str:
        return f"unknown run {self.args[0]!r}" if self.args else "unknown run"


class Entry:
    """One event on the bus, with its wire forms encoded once for every reader.

    Attributes:
        event: the event.
        seq: the event's `seq`.
        data: the event's codec JSON.
    """

    __slots__ = ("_sse", "data", "event", "seq")

    def __init__(self, event: Event, data: bytes | None = None) -> None:
        self.event = event
        self.seq = event.seq
        self.data = dumps(event) if data is None else data
        self._sse: bytes | None = None

    @property
    def sse(self) -> bytes:
        """The event as one Server-Sent Events message, built on first use, then kept.

        `id: <seq>`, `event: <type>` and `data: <codec JSON>` lines and a blank
        line: the same bytes for every reader, so a run read by a thousand
        clients is framed once, not a thousand times.
        """
        frame = self._sse
        if frame is None:
            frame = self._sse = b"id: %d\nevent: %s\ndata: %s\n\n" % (
                self.seq,
                self.event.type.encode(),
                self.data,
            )
        return frame


class _Batch(tuple[Entry, ...]):
    """Consecutive entries of one log, handed to every reader that asks for them.

    Readers that keep pace with each other ask for the same ranges, so they get
    the same batch, and its frames are joined once for all of them (`sse`).
    """

    sse: bytes | None = None


def sse_frames(entries: Sequence[Entry]) -> bytes:
    """The entries' SSE messages (`Entry.sse`), joined for one write.

    Joined once per batch when `entries` is a batch `MemoryBus.read` shares.
    """
    if type(entries) is _Batch:
        chunk = entries.sse
        if chunk is None:
            chunk = entries.sse = _joined(entries)
        return chunk
    return _joined(entries)


def _joined(entries: Sequence[Entry]) -> bytes:
    try:
        return b"".join([e._sse for e in entries])  # type: ignore[misc]
    except TypeError:  # some not built yet: None in the list
        return b"".join([e.sse for e in entries])


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
            UnknownRun: no such run (a `KeyError`).
            HistoryGone: the entries after `after` were evicted.
        """

    async def record(self, run_id: str) -> RunRecord | None:
        """The run's record, or None if the bus does not know it."""
