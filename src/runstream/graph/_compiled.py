"""`CompiledGraph`: a checked graph that runs as a cold stream of events."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .._flow import subscribing
from .._ids import new_id
from ..events import Event, Phase, RunInfo
from ._checkpoint import (
    Checkpoint,
    Checkpointer,
    decode_checkpoint,
    decode_thread,
    encode_checkpoint,
)
from ._context import RunContext
from ._engine import Durable, Run, Tree
from ._errors import RunCanceled
from ._inbox import Inbox
from ._spec import GraphSpec
from ._stream import RunStream

__all__ = ["CompiledGraph"]

DEFAULT_MAX_STEPS = 50


class CompiledGraph:
    """A graph ready to run; made by `StateGraph.compile()`.

    Attributes:
        name: the graph's name (the `agent` of its events).
        max_steps: the default step limit of its runs.
    """

    def __init__(
        self,
        spec: GraphSpec,
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self._spec = spec
        self.name = spec.name
        self.max_steps = max_steps
        self.checkpointer = checkpointer
        self._live: dict[str, Run] = {}  # durable runs executing in this process

    @property
    def spec(self) -> GraphSpec:
        """The checked graph as the engine runs it (for runtimes and adapters)."""
        return self._spec

    @property
    def nodes(self) -> tuple[str, ...]:
        """The names of the graph's nodes."""
        return tuple(self._spec.nodes)

    def __repr__(self) -> str:
        return f"<CompiledGraph {self.name!r} nodes={list(self._spec.nodes)}>"

    def initial_state(self, input: object) -> dict[str, Any]:
        """The state a run of `input` starts from (after the graph's input adapter).

        Raises:
            TypeError: `input` is not a dict of state keys.
            KeyError: `input` has keys that are not in the state schema.
        """
        return self._spec.initial_state(input)

    def _limits(self, max_steps: int | None, timeout: float | None) -> int:
        steps = self.max_steps if max_steps is None else max_steps
        if type(steps) is not int or steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        return steps

    def run(
        self,
        input: object = None,
        *,
        thread_id: str | None = None,
        run_id: str | None = None,
        max_steps: int | None = None,
        timeout: float | None = None,
        inbox: Inbox | None = None,
        suspend: bool = False,
    ) -> RunStream:
        """A cold stream of this graph's events: each subscription is a new run.

        Args:
            input: the initial state (merged through the reducers).
            thread_id: the conversation the run belongs to.
            run_id: use this id instead of a fresh random one.
            max_steps: fail the run after this many steps (default 50).
            timeout: cancel the run after this many seconds; it ends with
                `Workflow(canceled)` carrying `ErrorInfo(type="TimeoutError")`.
            inbox: where answers to the run's questions arrive (`ctx.ask`,
                `ctx.external_tools`): `inbox.answer(request_id, value)`.
            suspend: with a checkpointer, a node that asks saves the run and
                the stream completes without a terminal event (status
                `suspended` in the checkpoint); `resume` goes on once
                answered. The `Runtime` runs durable graphs this way.

        Raises:
            TypeError, KeyError: `input` is not a dict of state keys.
            ValueError: `suspend` without a checkpointer.
        """
        steps = self._limits(max_steps, timeout)
        return RunStream(
            self._spec,
            self._spec.initial_state(input),
            thread_id=thread_id,
            run_id=run_id,
            max_steps=steps,
            timeout=timeout,
            inbox=inbox,
            durable=self._durable(suspend),
        )

    def _durable(
        self, suspend: bool, resumed: Checkpoint | None = None, **options: Any
    ) -> Callable[[], Durable] | None:
        store = self.checkpointer
        if store is None:
            if suspend:
                raise ValueError(f"graph {self.name!r} has no checkpointer to suspend runs in")
            return None
        return lambda: Durable(
            store,
            live=self._live,
            suspend=suspend,
            resumed=None if resumed is None else copy.deepcopy(resumed),
            **options,
        )

    def _store(self) -> Checkpointer:
        if self.checkpointer is None:
            raise ValueError(
                f"graph {self.name!r} has no checkpointer: compile it with "
                "checkpointer=rs.MemoryCheckpointer() (or SqliteCheckpointer, a bus)"
            )
        return self.checkpointer

    async def get_state(self, thread_id: str) -> dict[str, Any] | None:
        """Thread `thread_id`'s last final state (what its next run starts from).

        None when no run of the thread has completed.

        Raises:
            ValueError: the graph has no checkpointer.
            CheckpointError: the saved state does not fit the state schema.
        """
        data = await self._store().load_checkpoint(f"thread/{thread_id}")
        return None if data is None else decode_thread(data, self._spec.types)

    async def load_checkpoint(self, run_id: str) -> Checkpoint | None:
        """The last checkpoint of run `run_id`; None once the run has ended (or never).

        Raises:
            ValueError: the graph has no checkpointer.
            CheckpointError: the saved checkpoint cannot be read.
        """
        data = await self._store().load_checkpoint(f"run/{run_id}")
        return None if data is None else decode_checkpoint(data, self._spec.types)

    def release(self, run_id: str) -> bool:
        """Stop run `run_id`, executing here, without ending it; False if it is not here.

        For a process that stops: the run ends no phase, its checkpoint stays,
        and `resume` (on any process) goes on from it; messages and tool calls
        under way end as when cancelled. The `Runtime` does this for its
        durable runs when it stops, and queues them for another worker.
        """
        run = self._live.get(run_id)
        if run is None:
            return False
        run.release()
        return True

    async def discard(self, run_id: str) -> None:
        """Forget run `run_id`'s checkpoint and free its thread (a run ended from outside).

        Raises:
            ValueError: the graph has no checkpointer.
        """
        store = self._store()
        checkpoint = await self.load_checkpoint(run_id)
        await store.delete_checkpoint(f"run/{run_id}")
        if checkpoint is not None and checkpoint.thread_id is not None:
            lock = f"lock/{checkpoint.thread_id}"
            if await store.load_checkpoint(lock) == run_id.encode():
                await store.delete_checkpoint(lock)

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Save `checkpoint` as its run's last (a runtime marks a run `suspended`).

        Raises:
            ValueError: the graph has no checkpointer.
        """
        await self._store().save_checkpoint(
            f"run/{checkpoint.run_id}", encode_checkpoint(checkpoint)
        )

    def resume(
        self,
        checkpoint: Checkpoint,
        *,
        answers: Mapping[str, Any] | None = None,
        seq: int | None = None,
        tail: Sequence[Event] = (),
        reason: str = "answered",
        inbox: Inbox | None = None,
        suspend: bool = False,
        max_steps: int | None = None,
    ) -> RunStream:
        """A stream that goes on with a run from its checkpoint.

        The first event is `Custom("runstream.resumed", {"reason", "step",
        "nodes", "superseded"})`; then the step the checkpoint stopped in runs
        again (its nodes that had finished are not run again), and the run
        goes on as it would have.

        Args:
            checkpoint: from `load_checkpoint`.
            answers: answers to the checkpoint's open questions, by request id.
            seq: the first `seq` (default: the checkpoint's); past every event
                the run's log already holds.
            tail: the run's events from `checkpoint.step_seq` on, as logged:
                messages, tool calls and child runs they left open are closed
                first (a crashed step).
            reason: why it resumes (`answered`, `worker_lost`, ...), for the marker.
            inbox: as for `run`.
            suspend: as for `run`.
            max_steps: as for `run`.

        Raises:
            ValueError: the graph has no checkpointer, or the checkpoint is
                another graph's.
        """
        self._store()
        if checkpoint.agent != self.name:
            raise ValueError(
                f"checkpoint of run {checkpoint.run_id} is of graph {checkpoint.agent!r}, "
                f"not {self.name!r}"
            )
        start = checkpoint.seq if seq is None else max(seq, checkpoint.seq)
        return RunStream(
            self._spec,
            dict(checkpoint.state),
            thread_id=checkpoint.thread_id,
            run_id=checkpoint.run_id,
            max_steps=self._limits(max_steps, None),
            timeout=None,
            inbox=inbox,
            durable=self._durable(
                suspend, checkpoint, answers=dict(answers or {}), tail=tail, reason=reason
            ),
            seq=start,
        )

    async def invoke(
        self,
        input: object = None,
        *,
        thread_id: str | None = None,
        run_id: str | None = None,
        max_steps: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the run's own deadline
        inbox: Inbox | None = None,
    ) -> dict[str, Any]:
        """Run to the end in the current task and return the final state.

        Raises:
            RunFailed: the run failed (the original exception is `__cause__`).
            RunCanceled: the run was canceled, for instance by `timeout`.
        """
        steps = self._limits(max_steps, timeout)
        info = RunInfo(run_id=run_id or new_id(), agent=self.name, thread_id=thread_id)
        run = Run(
            self._spec,
            self._spec.initial_state(input),
            Tree(None, None, RunContext, inbox, info.run_id),
            info,
            max_steps=steps,
            timeout=timeout,
        )
        durable = self._durable(False)
        if durable is not None:
            run.durable = durable()
        with subscribing(None):
            outcome = await run.execute()
        if outcome.phase is Phase.CANCELED:
            raise RunCanceled(info.run_id, outcome.error)
        return run.state

    def stream(
        self,
        input: object = None,
        *,
        thread_id: str | None = None,
        run_id: str | None = None,
        max_steps: int | None = None,
        timeout: float | None = None,
    ) -> Iterator[Event]:
        """Run in a private event loop and yield events, for synchronous code.

        Closing the iterator early (`break`) cancels the run.

        Raises:
            RuntimeError: called while an event loop is running in this thread.
            RunFailed: after the failed event, when the run failed.
        """
        return self.run(
            input, thread_id=thread_id, run_id=run_id, max_steps=max_steps, timeout=timeout
        )._iterate_sync()
