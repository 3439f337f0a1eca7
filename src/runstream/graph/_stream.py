"""`RunStream`: a run as a cold `reactivex.Observable` of events."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from reactivex import abc
from reactivex.disposable import Disposable

from .._flow import Flow, clear_flow, current_flow
from .._ids import new_id
from .._observable import Buffer, LeanObservable, iterate, nothing, raise_error
from ..events import Event, RunInfo
from ._context import RunContext
from ._engine import Durable, Run, Tree
from ._spec import GraphSpec

__all__ = ["RunStream"]

_NO_LOOP = (
    "subscribing to a run needs a running asyncio event loop: iterate it with "
    "`async for` (or `await app.invoke(...)`) inside `asyncio.run(...)`, "
    "or use `app.stream(...)` from synchronous code"
)

# Runs in flight. asyncio keeps only weak references to tasks; the subscription
# owns its run task and this set keeps it alive until it ends.
_LIVE: set[asyncio.Task[None]] = set()


class RunStream(LeanObservable[Event]):
    """A run that has not started: each subscription starts a new one.

    Subscribe with reactivex (`.pipe(...)`, `.subscribe(...)`), iterate it with
    `async for` (bounded buffer; breaking out cancels the run), or hand it to a
    sink. Disposing a subscription cancels its run's tasks.
    """

    def __init__(
        self,
        spec: GraphSpec,
        state: dict[str, Any],
        *,
        thread_id: str | None,
        run_id: str | None,
        max_steps: int,
        timeout: float | None,
        buffer: int = 1024,
        inbox: Any = None,
        durable: Callable[[], Durable] | None = None,
        seq: int = 0,
    ) -> None:
        super().__init__()
        self._durable = durable
        self._seq = seq
        self._inbox = inbox
        self._spec = spec
        self._state = state
        self._thread_id = thread_id
        self._run_id = run_id
        self._max_steps = max_steps
        self._timeout = timeout
        self._buffer = buffer

    def subscribe(
        self,
        on_next: abc.ObserverBase[Event] | Callable[[Event], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_completed: Callable[[], None] | None = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        """Start a run delivering to the observer (or callbacks).

        Raises:
            RuntimeError: no asyncio event loop is running in this thread.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(_NO_LOOP) from None
        if on_next is None or isinstance(on_next, abc.ObserverBase):
            return super().subscribe(on_next, on_error, on_completed, scheduler=scheduler)
        # Plain callbacks (what operators pass): the run already keeps the observer
        # grammar (nothing after the end, nothing after disposal), so it skips
        # reactivex's AutoDetachObserver and its cost on every event.
        return self._start(
            on_next, on_error or raise_error, on_completed or nothing, current_flow()
        )

    def _new_run(self, on_next: Callable[[Event], None] | None, flow: Flow | None) -> Run:
        info = RunInfo(
            run_id=self._run_id or new_id(),
            agent=self._spec.name,
            thread_id=self._thread_id,
        )
        tree = Tree(on_next, flow, RunContext, self._inbox, info.run_id)
        tree.seq = self._seq
        run = Run(
            self._spec,
            dict(self._state),
            tree,
            info,
            max_steps=self._max_steps,
            timeout=self._timeout,
        )
        if self._durable is not None:
            run.durable = self._durable()
        if flow is not None:
            flow.on_cancel(run.request_cancel)
        return run

    def _subscribe_core(
        self, observer: abc.ObserverBase[Event], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return self._start(
            observer.on_next, observer.on_error, observer.on_completed, current_flow()
        )

    def _start(
        self,
        on_next: Callable[[Event], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
        flow: Flow | None,
    ) -> abc.DisposableBase:
        """Start one run delivering to the callbacks; dispose to cancel it at once."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(_NO_LOOP) from None
        run = self._new_run(on_next, flow)
        # The run's own task must not see this subscriber's flow: a node that
        # subscribes to another run would otherwise pick it up.
        context = contextvars.copy_context()
        context.run(clear_flow)
        task = loop.create_task(_drive(run, on_error, on_completed), context=context)
        _LIVE.add(task)
        task.add_done_callback(_LIVE.discard)

        def dispose() -> None:
            run.tree.disposed = True
            task.cancel()

        return Disposable(dispose)

    def __aiter__(self) -> AsyncIterator[Event]:
        return iterate(self, self._buffer)

    def _iterate_sync(self) -> Iterator[Event]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "stream() is for synchronous code; inside a running event loop use "
                "`async for event in app.run(...)`"
            )
        loop = asyncio.new_event_loop()
        buffer = Buffer[Event](self._buffer)

        async def start() -> abc.DisposableBase:
            return buffer.subscribe(self)

        subscription = loop.run_until_complete(start())
        try:
            while True:
                chunk = loop.run_until_complete(buffer.take())
                if chunk is None:
                    return
                yield from chunk
        finally:
            subscription.dispose()
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            if pending:
                loop.run_until_complete(asyncio.wait(pending))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()


async def _drive(
    run: Run, on_error: Callable[[Exception], None], on_completed: Callable[[], None]
) -> None:
    try:
        await run.execute()
    except Exception as exc:  # RunFailed, or an observer that raised: never lose it
        if not run.tree.disposed:
            on_error(exc)
        return
    if not run.tree.disposed:
        on_completed()
