"""`CompiledGraph`: a checked graph that runs as a cold stream of events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .._flow import subscribing
from .._ids import new_id
from ..events import Event, Phase, RunInfo
from ._context import RunContext
from ._engine import Run, Tree
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

    def __init__(self, spec: GraphSpec, *, max_steps: int = DEFAULT_MAX_STEPS) -> None:
        self._spec = spec
        self.name = spec.name
        self.max_steps = max_steps

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

        Raises:
            TypeError, KeyError: `input` is not a dict of state keys.
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
