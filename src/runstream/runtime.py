"""`Runtime`: hot runs by graph name, kept on a bus, readable from any process.

A `Runtime` starts runs by graph name and keeps their events on a bus
(`runstream.buses`). Any process connected to the same bus can read a run
(history, then live, resumable after any `seq`), subscribe sinks to it,
cancel it or wait for it, wherever it executes. The HTTP server is a thin
layer over one; a program with no HTTP uses it directly.

Example:
    ```python
    rt = rs.Runtime({"assistant": app}, bus="redis://127.0.0.1:6379/0")
    async with rt:
        run_id = await rt.start("assistant", "hi")
        async for event in rt.events(run_id):
            print(event.seq, event.type)
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self

import attrs
from reactivex import Observable

from ._ids import new_id
from .buses import (
    Job,
    MemoryBus,
    RunBus,
    RunRecord,
    RunStatus,
    UnknownRun,
    WorkBus,
    bus_events,
    open_bus,
)
from .codec import jsonable
from .events import (
    AwaitClarification,
    AwaitExternalTools,
    ErrorInfo,
    Event,
    Phase,
    RunInfo,
    Workflow,
)
from .graph import (
    AlreadyAnswered,
    Checkpoint,
    CompiledGraph,
    Inbox,
    RunFailed,
    UnknownRequest,
    check_results,
)
from .ops import Profile
from .ops import profile as shown_as
from .sinks import Attachment, Sink, SinkPolicy, attach, uses_send_batch, with_policy

__all__ = ["Role", "Runtime", "UnknownGraph", "WorkerLost"]

Role = Literal["all", "api", "worker"]

_log = logging.getLogger("runstream.runtime")
_ROLES = ("all", "api", "worker")
_CLAIM_WAIT = 1.0  # seconds a worker waits on the queue before it looks around again


class UnknownGraph(LookupError):
    """No graph of that name in the `Runtime` (a `LookupError`)."""


class WorkerLost(RuntimeError):
    """The process executing a run stopped holding its lease (killed, frozen, cut off).

    Never raised: it is the `error.type` of the `Workflow(failed)` event that
    another process appends to end such a run.
    """


class Runtime:
    """Runs by graph name, their events kept on a bus any process can read.

    Use it as `async with rt:` so that it connects to the bus and, for roles
    `all` and `worker`, executes queued runs. A run of a graph compiled with
    a checkpointer suspends while it waits for an answer (no task holds it;
    the answer resumes it on any worker) and resumes from its checkpoint when
    its worker is lost (docs/durability.md). Outside the block, `start` in
    role `all` still executes runs here at once (handy in a test or a script).

    Args:
        graphs: the graphs by name. An API process needs them to check a
            start request; a worker, to execute the run.
        bus: a bus (`MemoryBus`, `RedisBus`, `NatsBus`) or its URL
            (`memory://`, `redis://...`, `nats://...`); an in-process
            `MemoryBus` when None. A bus built here from a URL is closed
            when the runtime is; one passed in belongs to the caller.
        sinks: global sinks: every event of every run this process executes
            goes to each of them (their `send` calls never overlap); each is
            closed once, when the runtime closes.
        role: `"all"` starts and executes runs; `"api"` starts runs by
            queueing them for workers; `"worker"` executes queued runs.
        concurrency: the most runs this process executes at once. Beyond it,
            `start` queues the run; a worker claims queued runs only while it
            has room.
        lease: seconds within which a process executing a run renews its lease
            on it. When one lapses (the process was killed), any other process
            of the same bus ends the run with `Workflow(failed)` whose error
            type is `WorkerLost`, or, when the run's graph has a
            checkpointer, resumes it from its last checkpoint on a worker.

    Raises:
        TypeError: a graph is not a `CompiledGraph`, or `bus` is neither a bus
            nor a URL.
        ValueError: an unknown role, a bad bus URL, or a limit below 1.
    """

    def __init__(
        self,
        graphs: Mapping[str, CompiledGraph],
        *,
        bus: WorkBus | RunBus | str | None = None,
        sinks: Sequence[Sink[Event] | SinkPolicy[Event]] = (),
        role: Role = "all",
        concurrency: int = 64,
        lease: float = 10.0,
    ) -> None:
        for name, app in graphs.items():
            if not isinstance(app, CompiledGraph):
                raise TypeError(f"graph {name!r} is {type(app).__name__}, not a CompiledGraph")
        if role not in _ROLES:
            raise ValueError(f"role must be one of {', '.join(_ROLES)}; got {role!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if not lease > 0:
            raise ValueError(f"lease must be a positive number of seconds, got {lease}")
        self._owns_bus = isinstance(bus, str)
        chosen = open_bus(bus) if isinstance(bus, str) else MemoryBus() if bus is None else bus
        if not isinstance(chosen, RunBus):
            raise TypeError(f"bus must be a RunBus or a bus URL, got {type(chosen).__name__}")
        self.graphs: dict[str, CompiledGraph] = dict(graphs)
        self.bus: RunBus = chosen
        self.role: Role = role
        self.concurrency = concurrency
        self.lease = lease
        self._shared = [_Shared(s.sink if isinstance(s, SinkPolicy) else s) for s in sinks]
        self._sinks: list[Sink[Event] | SinkPolicy[Event]] = [
            with_policy(shared, buffer=s.buffer, overflow=s.overflow)
            if isinstance(s, SinkPolicy)
            else shared
            for shared, s in zip(self._shared, sinks, strict=True)
        ]
        self._running: dict[str, Attachment[Event]] = {}
        self._inbox = Inbox()  # answers for the runs executing here
        self._finishing: dict[str, asyncio.Task[None]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._room: asyncio.Event | None = None
        self._entered = False
        self._closed = False

    # --- lifetime ------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Connect to the bus; with roles `all` and `worker`, start executing queued runs.

        Raises:
            ConnectionError: the broker cannot be reached (the message names it).
            RuntimeError: entered twice, or after it was closed.
        """
        if self._entered or self._closed:
            raise RuntimeError("a Runtime is entered once")
        work = self._work_bus()
        if work is not None:
            await work.connect()
        self._entered = True
        loop = asyncio.get_running_loop()
        if work is not None:
            if self.role != "api":
                self._loops.append(loop.create_task(self._claim_runs(work)))
                self._loops.append(loop.create_task(self._follow_cancels(work)))
                self._loops.append(loop.create_task(self._follow_answers(work)))
            self._loops.append(loop.create_task(self._keep_leases(work)))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop claiming runs, cancel the runs executing here (each ends with a
        terminal event), close the global sinks and a bus built from a URL.

        Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task  # ends at its next turn at worst (`_closed` is set)
        self._loops.clear()
        await self.stop_runs()
        for shared in self._shared:
            await shared.close_inner()
        work = self._work_bus()
        if self._owns_bus and work is not None:
            await work.aclose()

    async def stop_runs(self, grace: float = 5.0) -> None:
        """Stop every run this process executes and return once each has stopped.

        A run of a graph with a checkpointer is handed over: it stops without
        ending, and is queued to resume from its checkpoint on another worker
        (or this one, once it runs again). Any other run ends with
        `Workflow(canceled)` on the bus. A run that has not stopped within
        `grace` seconds is disposed of (stopped at once).
        """
        work = self._work_bus()
        durable = [app for app in self.graphs.values() if app.checkpointer is not None]
        handed: list[str] = []
        runs = list(self._running.values())
        tasks = [self._finishing[run_id] for run_id in self._running]
        for run_id, attachment in list(self._running.items()):
            if work is not None and any(app.release(run_id) for app in durable):
                handed.append(run_id)
            else:
                attachment.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for attachment in runs:
            attachment.dispose()
        for attachment in runs:
            await attachment.wait_closed()
        await asyncio.gather(*tasks, return_exceptions=True)  # leases released
        for run_id in handed:
            record = await self.bus.record(run_id)
            if work is not None and record is not None and not record.finished:
                job = Job(run_id, record.graph, None, record.thread_id, record.owner, "restarted")
                await work.enqueue(job)

    @property
    def entered(self) -> bool:
        """Whether `async with` has entered the runtime (and not left it)."""
        return self._entered and not self._closed

    @property
    def executing(self) -> int:
        """How many runs this process executes right now."""
        return len(self._running)

    # --- runs ----------------------------------------------------------------------

    async def start(
        self,
        graph: str,
        input: Any = None,
        *,
        thread_id: str | None = None,
        owner: str | None = None,
    ) -> str:
        """Start a run of `graph`; return its id once it is on the bus.

        In role `all` (and `worker`) the run executes here, unless this
        process already executes `concurrency` runs: then, as in role `api`,
        it is queued (status `queued`) for the next worker with room.

        Raises:
            UnknownGraph: no graph of that name.
            TypeError, KeyError, ValueError: `input` does not fit the graph's
                state, or a queued run's input is not JSON.
        """
        app = self._graph(graph)
        run_id = new_id()
        # Checks the input.
        stream = self._stream(app, input, thread_id, run_id)
        work = self._work_bus()
        queue = self.role == "api" or (self._entered and len(self._running) >= self.concurrency)
        if queue and work is not None:
            job = Job(run_id, graph, jsonable(input, "input"), thread_id, owner)
            await work.open(run_id, graph=graph, owner=owner, thread_id=thread_id, status="queued")
            await work.enqueue(job)
        elif self.role == "api":
            raise TypeError(f"role 'api' needs a bus that queues runs; {self.bus!r} does not")
        else:
            await self.bus.open(run_id, graph=graph, owner=owner, thread_id=thread_id)
            await self._execute(run_id, stream)
        return run_id

    def events(
        self, run_id: str, after: int | None = None, profile: Profile | str | None = None
    ) -> Observable[Event]:
        """The run as a cold `Observable[Event]`: history after `after`, then live.

        Completes after the run's terminal event and errors with `RunFailed`
        after a failed one, as a local run does; errors with `UnknownRun` for
        a run the bus does not know and `HistoryGone` for evicted history.
        Supports `async for`. `profile` shows the run as that profile sees it.
        """
        source = bus_events(self.bus, run_id, after)
        return source if profile is None else source.pipe(shown_as(profile))

    async def subscribe(
        self,
        run_id: str,
        *sinks: Sink[Event] | SinkPolicy[Event],
        after: int | None = None,
        profile: Profile | str | None = None,
    ) -> Attachment[Event]:
        """`attach(rt.events(run_id, after, profile), *sinks)`, once the run is known.

        Raises:
            UnknownRun: the bus does not know the run.
        """
        await self._record(run_id)
        return attach(self.events(run_id, after, profile), *sinks)

    async def cancel(self, run_id: str) -> None:
        """Ask the run to stop, wherever it executes; it ends with `Workflow(canceled)`.

        Returns once the request is made (use `wait` for the end). Cancelling
        a finished run does nothing.

        Raises:
            UnknownRun: the bus does not know the run.
        """
        attachment = self._running.get(run_id)
        if attachment is not None:
            attachment.cancel()
            return
        record = await self._record(run_id)
        work = self._work_bus()
        if record.finished or work is None:
            return
        app = self.graphs.get(record.graph)
        if app is not None and app.checkpointer is not None:
            checkpoint = await app.load_checkpoint(run_id)
            if (
                checkpoint is not None
                and checkpoint.status == "suspended"
                and await _claim_wake(work, checkpoint)
            ):
                # Nobody executes it: end it here.
                await app.discard(run_id)
                await self._end(work, run_id, Phase.CANCELED, None)
                return
        await work.request_cancel(run_id)

    async def answer(self, run_id: str, request_id: str, value: Any) -> None:
        """Answer a run's `AwaitClarification` / `AwaitExternalTools` request.

        The run's node waiting in `ctx.ask` / `ctx.external_tools` gets
        `value` (for tool calls, a list with one result per call), wherever
        it executes: a run executing in another process gets it through the
        bus (checked here against the run's request, kept once on the bus).

        Raises:
            UnknownRun: the bus does not know the run.
            UnknownRequest: the run does not wait for `request_id` (never
                asked, answered and gone on, or the run has ended).
            AlreadyAnswered: the request was answered already.
            ValueError: the answer to tool calls is not one result per call.
            NotImplementedError: the run executes in another process and the
                bus carries no answers (it is not a `WorkBus`).
        """
        record = await self._record(run_id)
        app = self.graphs.get(record.graph)
        durable = app is not None and app.checkpointer is not None
        if run_id in self._running and not (durable and self._work_bus() is not None):
            self._inbox.answer(request_id, value, run_id=run_id)
            return
        if record.finished or record.status == "queued":
            raise UnknownRequest(f"run {run_id!r} waits for no answer ({record.status})")
        work = self._work_bus()
        if work is None:
            raise NotImplementedError(
                f"run {run_id!r} executes in another process, and {self.bus!r} carries no answers"
            )
        # Another process executes it: check the answer against the request on
        # the bus, then post it there once for that process to take.
        request = await self._request(run_id, request_id, record.events)
        if request is None:
            raise UnknownRequest(f"run {run_id!r} has asked nothing with id {request_id!r}")
        if isinstance(request, AwaitExternalTools):
            check_results(request_id, value, len(request.calls))
        value = jsonable(value, "value")
        if not await work.post_answer(run_id, request_id, value):
            raise AlreadyAnswered(f"request {request_id!r} was answered already")
        if run_id in self._running:
            self._give(run_id, request_id, value)  # waiting here in its task
        if app is not None and app.checkpointer is not None:
            checkpoint = await app.load_checkpoint(run_id)
            if checkpoint is not None and checkpoint.status == "suspended":
                await self._wake(work, app, checkpoint, request_id)

    async def _request(
        self, run_id: str, request_id: str, events: int
    ) -> AwaitClarification | AwaitExternalTools | None:
        """The run's request `request_id`, read from the run's events on the bus."""
        async with contextlib.aclosing(self._logged(run_id, -1, events)) as logged:
            async for event in logged:
                if (
                    isinstance(event, AwaitClarification | AwaitExternalTools)
                    and event.request_id == request_id
                ):
                    return event
        return None

    async def _logged(self, run_id: str, after: int, end: int) -> AsyncGenerator[Event, None]:
        """The run's events with `after` < seq < `end`, as the bus holds them (not live)."""
        if end <= after + 1:
            return
        batches = self.bus.read(run_id, after)
        try:
            async for batch in batches:
                for entry in batch:
                    if entry.seq >= end:
                        return
                    yield entry.event
                    if entry.seq >= end - 1:
                        return
        finally:
            await _closed(batches)

    async def status(self, run_id: str) -> RunRecord | None:
        """The run's record, or None when the bus does not know it."""
        return await self.bus.record(run_id)

    async def wait(self, run_id: str) -> RunRecord:
        """The run's record once it has ended (any status but running/queued/awaiting).

        Raises:
            UnknownRun: the bus does not know the run.
        """
        record = await self._record(run_id)
        if record.finished:
            return record
        last: Event | None = None
        # From the last event the record counts: if that one is the end, it is read.
        async for batch in self.bus.read(run_id, max(record.events - 2, -1)):
            if batch:
                last = batch[-1].event
        record = await self._record(run_id)
        if not record.finished and isinstance(last, Workflow) and last.phase.is_terminal:
            # The log has the end; the record (written after it) may lag a moment.
            status: RunStatus = last.phase.value  # type: ignore[assignment]
            record = attrs.evolve(record, status=status, events=last.seq + 1)
        return record

    # --- executing -----------------------------------------------------------------

    async def _execute(self, run_id: str, stream: Observable[Event]) -> None:
        attachment = attach(stream, _RunLog(self.bus, run_id), *self._sinks)
        self._running[run_id] = attachment
        loop = asyncio.get_running_loop()
        self._finishing[run_id] = loop.create_task(self._finish(run_id, attachment))
        work = self._work_bus()
        if work is not None and self._entered:
            await work.renew((run_id,), self.lease)
            if await work.cancel_requested(run_id):
                attachment.cancel()

    async def _finish(self, run_id: str, attachment: Attachment[Event]) -> None:
        try:
            await attachment.wait()
        except RunFailed:
            pass  # on the bus as the run's terminal event
        finally:
            self._running.pop(run_id, None)
            self._finishing.pop(run_id, None)
            if self._room is not None:
                self._room.set()
            work = self._work_bus()
            if work is not None and self._entered:
                with contextlib.suppress(Exception):  # the lease lapses by itself anyway
                    await work.release(run_id)
        try:
            await self._suspended(run_id)
        except Exception as exc:  # the answer still wakes it: its poster looks too
            _log.warning("marking run %s suspended failed: %s", run_id, exc)

    async def _claim_runs(self, work: WorkBus) -> None:
        """Take queued runs while this process has room for them."""
        room = self._room = asyncio.Event()
        while not self._closed:  # not only cancel: a client library may swallow one
            while len(self._running) >= self.concurrency:
                room.clear()
                await room.wait()
            try:
                job = await work.claim(_CLAIM_WAIT, self.lease)
            except Exception as exc:  # a background loop never dies: it says why, then retries
                _log.warning("claiming runs from %r failed: %s; trying again", self.bus, exc)
                await asyncio.sleep(_CLAIM_WAIT)
                continue
            if job is None:
                continue
            if self._closed:  # claimed as this process was stopping: hand it back
                await work.enqueue(job)
                await work.release(job.run_id)
                return
            await self._run_job(work, job)

    def _stream(
        self, app: CompiledGraph, input: Any, thread_id: str | None, run_id: str
    ) -> Observable[Event]:
        durable = app.checkpointer is not None and self._work_bus() is not None
        return app.run(
            input, thread_id=thread_id, run_id=run_id, inbox=self._inbox, suspend=durable
        )

    async def _run_job(self, work: WorkBus, job: Job) -> None:
        record = await work.record(job.run_id)
        if record is None or (record.status != "queued" and job.resume is None):
            return  # delivered twice by the broker: another process has it, or it ended
        app = self.graphs.get(job.graph)
        try:
            if app is None:
                raise UnknownGraph(f"this worker has no graph {job.graph!r}")
            if job.resume is not None:
                await self._resume_here(app, job.run_id, job.resume)
                return
            stream = self._stream(app, job.input, job.thread_id, job.run_id)
        except Exception as exc:  # the run cannot start here: end it, with the reason
            error = ErrorInfo(type(exc).__name__, str(exc))
            await self._end(work, job.run_id, Phase.FAILED, error)
            return
        if await work.cancel_requested(job.run_id):
            await self._end(work, job.run_id, Phase.CANCELED, None)
            return
        await work.set_status(job.run_id, "running")
        await self._execute(job.run_id, stream)

    async def _follow_cancels(self, work: WorkBus) -> None:
        """Cancel the runs executing here that another process asks to stop."""
        while not self._closed:  # not only cancel: a client library may swallow one
            requests = work.cancel_requests()
            try:
                async for run_id in requests:
                    attachment = self._running.get(run_id)
                    if attachment is not None:
                        attachment.cancel()
            except Exception as exc:  # a background loop never dies: it says why, then retries
                _log.warning("listening for cancel requests failed: %s; trying again", exc)
                await asyncio.sleep(_CLAIM_WAIT)
            finally:
                await _closed(requests)  # its connection now, not when collected

    async def _follow_answers(self, work: WorkBus) -> None:
        """Give the runs executing here the answers posted to them from any process."""
        while not self._closed:  # not only cancel: a client library may swallow one
            posted = work.answers()
            try:
                async for run_id, request_id, value in posted:
                    if run_id in self._running:
                        self._give(run_id, request_id, value)
            except Exception as exc:  # a background loop never dies: it says why, then retries
                _log.warning("listening for answers failed: %s; trying again", exc)
                await asyncio.sleep(_CLAIM_WAIT)
            finally:
                await _closed(posted)

    def _give(self, run_id: str, request_id: str, value: Any) -> None:
        with contextlib.suppress(UnknownRequest, AlreadyAnswered, ValueError):
            # Checked when posted; taken already, or the run has gone on.
            self._inbox.answer(request_id, value, run_id=run_id)

    async def _keep_leases(self, work: WorkBus) -> None:
        """Renew the leases of the runs executing here; end runs whose lease lapsed."""
        while not self._closed:  # not only cancel: a client library may swallow one
            try:
                if self._running:
                    held = list(self._running)
                    await work.renew(held, self.lease)
                    for run_id in held:
                        if run_id not in self._running:  # ended meanwhile: its release
                            await work.release(run_id)  # may have come before the renewal
                    for run_id in list(self._running):
                        if await work.cancel_requested(run_id):  # a request we missed
                            self._running[run_id].cancel()
                        for request_id in self._inbox.waiting_in(run_id):  # answers missed
                            posted, value = await work.posted_answer(run_id, request_id)
                            if posted:
                                self._give(run_id, request_id, value)
                for run_id in await work.take_expired():
                    if not await self._take_over(work, run_id):
                        await self._end(work, run_id, Phase.FAILED, _lost(run_id, self.lease))
            except Exception as exc:  # a background loop never dies: it says why, then retries
                _log.warning("renewing leases failed: %s; trying again", exc)
            await asyncio.sleep(self.lease / 4)

    # --- durable runs (graphs compiled with a checkpointer) ------------------------------

    async def _suspended(self, run_id: str) -> None:
        """A run's stream ended: if it stopped at a question, mark it suspended.

        Its events are all on the bus by now, so another process may go on
        with it. An answer that came meanwhile wakes it at once.
        """
        work = self._work_bus()
        if work is None or all(app.checkpointer is None for app in self.graphs.values()):
            return  # no run here suspends: no look at the bus
        record = await self.bus.record(run_id)
        app = None if record is None else self.graphs.get(record.graph)
        if record is None or record.finished or app is None or app.checkpointer is None:
            return
        checkpoint = await app.load_checkpoint(run_id)
        if checkpoint is None or checkpoint.status != "awaiting":
            return
        checkpoint.status = "suspended"
        await app.save_checkpoint(checkpoint)
        for ask in checkpoint.awaits:
            if not ask.answered and (await work.posted_answer(run_id, ask.request_id))[0]:
                await self._wake(work, app, checkpoint, ask.request_id)
                return

    async def _wake(
        self, work: WorkBus, app: CompiledGraph, checkpoint: Checkpoint, request_id: str
    ) -> None:
        """Resume a suspended run that `request_id`'s answer unblocks, once in all processes.

        Both the process that posts an answer and the one that suspends the
        run look; the first to claim the wake-up on the bus resumes it.
        """
        if request_id not in {a.request_id for a in checkpoint.awaits if not a.answered}:
            return
        if not await _claim_wake(work, checkpoint):
            return  # the other side resumes it (or a cancel ended it)
        await self._resume(work, app, checkpoint.run_id, "answered")

    async def _take_over(self, work: WorkBus, run_id: str) -> bool:
        """Resume a run whose worker was lost from its last checkpoint; False if none."""
        record = await work.record(run_id)
        app = None if record is None else self.graphs.get(record.graph)
        if app is None or app.checkpointer is None or record is None or record.finished:
            return False
        if await app.load_checkpoint(run_id) is None:
            return False
        await self._resume(work, app, run_id, "worker_lost")
        return True

    async def _resume(self, work: WorkBus, app: CompiledGraph, run_id: str, reason: str) -> None:
        """Resume here when this process executes runs and has room; else queue it."""
        if self.role != "api" and len(self._running) < self.concurrency and not self._closed:
            await self._resume_here(app, run_id, reason)
            return
        record = await self._record(run_id)
        job = Job(run_id, record.graph, None, record.thread_id, record.owner, reason)
        await work.enqueue(job)

    async def _resume_here(self, app: CompiledGraph, run_id: str, reason: str) -> None:
        """Go on with a run from its checkpoint, in this process."""
        work = self._work_bus()
        checkpoint = await app.load_checkpoint(run_id)
        record = await self.bus.record(run_id)
        if work is None or checkpoint is None or record is None or record.finished:
            return  # it ended meanwhile
        answers: dict[str, Any] = {}
        for ask in checkpoint.awaits:
            if not ask.answered:
                posted, value = await work.posted_answer(run_id, ask.request_id)
                if posted:
                    answers[ask.request_id] = value
        logged = self._logged(run_id, checkpoint.step_seq - 1, record.events)
        tail = [event async for event in logged]
        stream = app.resume(
            checkpoint,
            answers=answers,
            seq=record.events,
            tail=tail,
            reason=reason,
            inbox=self._inbox,
            suspend=True,
        )
        await work.set_status(run_id, "running")
        await self._execute(run_id, stream)

    async def _end(self, work: WorkBus, run_id: str, phase: Phase, error: ErrorInfo | None) -> None:
        """End a run that nobody executes with a terminal `Workflow` at its next seq.

        A run that never started gets its `Workflow(started)` first, so that
        its stream reads like any other.
        """
        record = await work.record(run_id)
        if record is None or record.finished:
            return
        info = RunInfo(run_id, record.graph, None, record.thread_id)
        seq = record.events
        events: list[Event] = []
        if seq == 0:
            events.append(Workflow(run=info, seq=0, phase=Phase.STARTED))
            seq = 1
        events.append(Workflow(run=info, seq=seq, phase=phase, error=error))
        await work.append(run_id, events)

    # --- helpers -------------------------------------------------------------------

    def _graph(self, name: str) -> CompiledGraph:
        app = self.graphs.get(name)
        if app is None:
            known = ", ".join(sorted(self.graphs)) or "none"
            raise UnknownGraph(f"unknown graph {name!r}; graphs: {known}")
        return app

    async def _record(self, run_id: str) -> RunRecord:
        record = await self.bus.record(run_id)
        if record is None:
            raise UnknownRun(run_id)
        return record

    def _work_bus(self) -> WorkBus | None:
        bus = self.bus
        return bus if isinstance(bus, WorkBus) else None

    def __repr__(self) -> str:
        return (
            f"Runtime(graphs={sorted(self.graphs)}, bus={self.bus!r}, role={self.role!r}, "
            f"executing={len(self._running)})"
        )


async def _claim_wake(work: WorkBus, checkpoint: Checkpoint) -> bool:
    """Claim, once across every process, what happens to a suspended run next.

    A suspension is known by the seq it stopped at; whoever claims it first
    (an answer's poster, the suspending process, a cancel) acts on it.
    """
    return await work.post_answer(checkpoint.run_id, f"~wake:{checkpoint.seq}", True)


async def _closed(iterator: AsyncIterator[Any]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


def _lost(run_id: str, lease: float) -> ErrorInfo:
    return ErrorInfo(
        WorkerLost.__name__,
        f"the process executing run {run_id} stopped renewing its lease "
        f"({lease:g} s): it was killed or cut off",
        retryable=True,
    )


class _RunLog:
    """Appends one run's events (its child runs' included) to its log on the bus."""

    def __init__(self, bus: RunBus, run_id: str) -> None:
        self.bus = bus
        self.run_id = run_id

    async def send(self, item: Event) -> None:
        await self._status((item,))
        await self.bus.append(self.run_id, (item,))

    async def send_batch(self, items: list[Event]) -> None:
        await self._status(items)
        await self.bus.append(self.run_id, items)

    async def _status(self, items: Sequence[Event]) -> None:
        """The record says `awaiting` while the root run waits for an answer.

        Written before the events: whoever reads a request from the bus
        finds the record awaiting already.
        """
        bus = self.bus
        if not isinstance(bus, WorkBus):
            return
        for item in reversed(items):
            if type(item) is Workflow and item.run.run_id == self.run_id:
                phase = item.phase
                if not phase.is_terminal:
                    status: RunStatus = "awaiting" if phase is Phase.AWAITING else "running"
                    await bus.set_status(self.run_id, status)
                return

    async def close(self) -> None:
        return None


class _Shared:
    """A global sink seen by every run: sends never overlap; closed by the runtime only."""

    def __init__(self, sink: Sink[Event]) -> None:
        self.inner: Any = sink
        self._lock = asyncio.Lock()
        self._batched = uses_send_batch(sink)
        self._closed = False

    async def send(self, item: Event) -> None:
        async with self._lock:
            await self.inner.send(item)

    async def send_batch(self, items: list[Event]) -> None:
        async with self._lock:
            if self._batched:
                await self.inner.send_batch(items)
            else:
                send: Callable[[Event], Awaitable[None]] = self.inner.send
                for item in items:
                    await send(item)

    async def close(self) -> None:
        """One run ended: the sink stays open for the others."""

    async def close_inner(self) -> None:
        if not self._closed:
            self._closed = True
            async with self._lock:
                await self.inner.close()
