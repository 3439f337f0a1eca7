"""The run bus protocol: what any bus keeps of a run, and how readers get it."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal, Protocol, TypeGuard, TypeVar, runtime_checkable

import attrs

from ..codec import dumps
from ..events import JSON, Event, Workflow

__all__ = [
    "Entry",
    "HistoryGone",
    "Job",
    "RunBus",
    "RunRecord",
    "RunStatus",
    "UnknownRun",
    "WorkBus",
    "sse_frames",
]

RunStatus = Literal["queued", "running", "awaiting", "completed", "failed", "canceled"]
FINISHED: frozenset[str] = frozenset({"completed", "failed", "canceled"})


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
        run_id: the root run's id.
        graph: the name of the graph it runs.
        owner: the principal that started it (None: nobody's).
        thread_id: the conversation it belongs to.
        status: `queued` (waiting for a worker), `running`, `awaiting` (an
            answer), `completed`, `failed` or `canceled`.
        events: how many events the run has emitted (the next seq).
        oldest: the seq of the oldest event still kept (0 until eviction).
    """

    run_id: str
    graph: str
    owner: str | None
    thread_id: str | None
    status: RunStatus
    events: int
    oldest: int = 0

    @property
    def finished(self) -> bool:
        """Whether the run has ended (completed, failed or canceled)."""
        return self.status in FINISHED


@runtime_checkable
class RunBus(Protocol):
    """Keeps each run's events and serves them to readers.

    Small and transport-neutral on purpose: an in-memory list, a Redis stream
    or a NATS JetStream subject can all do this.
    """

    async def open(
        self,
        run_id: str,
        *,
        graph: str,
        owner: str | None,
        thread_id: str | None = None,
        status: RunStatus = "running",
    ) -> None:
        """Register a new run before its first event.

        Raises:
            ValueError: the bus has a run of that id already.
        """

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


@attrs.frozen
class Job:
    """A run started by one process for a worker to execute.

    Attributes:
        run_id: the run's id (its record is already on the bus, `queued`).
        graph: the name of the graph to run.
        input: the run's input, as JSON.
        thread_id: the conversation it belongs to.
        owner: the principal that started it.
        resume: for a run to go on from its checkpoint rather than start:
            why (`answered`, `worker_lost`); None for a new run.
    """

    run_id: str
    graph: str
    input: Any
    thread_id: str | None = None
    owner: str | None = None
    resume: str | None = None

    def to_json(self) -> bytes:
        """The job as JSON (what a queue entry holds)."""
        return json.dumps(attrs.asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Job:
        """A job from `to_json`'s form.

        Raises:
            ValueError: not such JSON.
        """
        try:
            body = json.loads(data)
            return cls(
                body["run_id"],
                body["graph"],
                body["input"],
                body["thread_id"],
                body["owner"],
                body.get("resume"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a queued run: {exc!r}") from None


def cancelled_meanwhile() -> None:
    """Raise `CancelledError` if the current task was asked to cancel.

    For loops around a client library call that may swallow a cancellation
    (redis-py's and nats-py's timed reads, which use `asyncio.wait_for`): the
    request stays counted on the task (`Task.cancelling`), so it is honoured
    at the loop's next turn.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


_T = TypeVar("_T")
_log = logging.getLogger("runstream.buses")
RETRY_FOR = 30.0  # seconds a broker call keeps trying through a lost connection


async def retried(
    call: Callable[[], Awaitable[_T]],
    lost: tuple[type[BaseException], ...],
    failure: str,
    *,
    warn: str | None = None,
) -> _T:
    """`await call()`, again while it raises one of `lost`, for up to `RETRY_FOR` seconds.

    The pause between tries grows from 50 ms to 1 s. `warn`, when given, is
    logged (with the error) before each new try.

    Raises:
        ConnectionError: still failing after `RETRY_FOR` seconds; the message
            is `failure`, the time and the last error.
    """
    deadline = time.monotonic() + RETRY_FOR
    delay = 0.05
    while True:
        try:
            return await call()
        except lost as exc:
            if time.monotonic() > deadline:
                raise ConnectionError(f"{failure} for {RETRY_FOR:g} s: {exc!r}") from None
            if warn is not None:
                _log.warning("%s (%r); retrying", warn, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


def is_end(event: Event) -> TypeGuard[Workflow]:
    """Whether `event` is the root run's terminal event (the last of its log)."""
    return type(event) is Workflow and event.phase.is_terminal and event.run.parent_run_id is None


@runtime_checkable
class WorkBus(RunBus, Protocol):
    """A `RunBus` that also carries work between processes: what a `Runtime` needs.

    Queued runs go to workers, cancel requests reach the process executing a
    run, and leases tell when a worker died. `MemoryBus` does all of it within
    one process; `RedisBus` and `NatsBus` across any number.
    """

    async def connect(self) -> None:
        """Connect to the broker (nothing for an in-process bus).

        Raises:
            ConnectionError: the broker cannot be reached; the message names it.
        """

    async def aclose(self) -> None:
        """Release every connection (idempotent)."""

    async def set_status(self, run_id: str, status: RunStatus) -> None:
        """Record a run's status (`running` once a worker took it, `awaiting`, ...)."""

    async def enqueue(self, job: Job) -> None:
        """Queue a run for a worker (its record is opened `queued` first)."""

    async def claim(self, wait: float, lease: float) -> Job | None:
        """The next queued run, taken by this process; None after `wait` seconds.

        The run is taken with a lease of `lease` seconds already on it, so a
        worker that dies right after the claim does not leave it unowned.
        """

    async def request_cancel(self, run_id: str) -> None:
        """Ask whatever process executes the run to cancel it (now or when it starts)."""

    async def cancel_requested(self, run_id: str) -> bool:
        """Whether someone asked for the run to be cancelled."""

    def cancel_requests(self) -> AsyncIterator[str]:
        """The ids of runs someone asks to cancel, as the requests come (from any process)."""

    async def post_answer(self, run_id: str, request_id: str, value: JSON) -> bool:
        """Keep the answer to a run's request and tell every process; once only.

        Returns False, keeping nothing, when the request has an answer already.

        Raises:
            UnknownRun: the bus does not know the run.
        """

    async def posted_answer(self, run_id: str, request_id: str) -> tuple[bool, JSON]:
        """`(True, value)` when the request has an answer kept; `(False, None)` otherwise."""

    def answers(self) -> AsyncIterator[tuple[str, str, JSON]]:
        """`(run_id, request_id, value)` of the answers posted, as they come (any process)."""

    async def renew(self, run_ids: Sequence[str], ttl: float) -> None:
        """Hold (or extend) this process's lease on each run for `ttl` seconds."""

    async def release(self, run_id: str) -> None:
        """Drop the lease on a run that ended."""

    async def take_expired(self) -> list[str]:
        """Take the runs whose lease ran out; each is handed to one caller only."""
