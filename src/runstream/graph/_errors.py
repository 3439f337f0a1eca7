"""Exceptions of the graph runtime."""

from __future__ import annotations

from ..events import ErrorInfo

__all__ = ["GraphError", "RoutingError", "RunCanceled", "RunFailed", "StepLimitError"]


class GraphError(ValueError):
    """The graph is malformed: raised by `StateGraph` methods and `compile()`."""


class RoutingError(ValueError):
    """A router or a `Command` named a node that does not exist."""


class StepLimitError(RuntimeError):
    """A run passed its `max_steps` without reaching its end."""


class RunFailed(Exception):
    """A run failed; the original exception is `__cause__`.

    Attributes:
        run_id: the run that failed.
        agent: the name of its graph.
        error: the failure as it appears in the terminal `Workflow` event.
    """

    def __init__(self, run_id: str, agent: str, error: ErrorInfo) -> None:
        super().__init__(f"run {run_id} of {agent!r} failed: {error.type}: {error.message}")
        self.run_id = run_id
        self.agent = agent
        self.error = error


class RunCanceled(Exception):
    """Raised by `invoke` when the run was canceled (for instance by its `timeout`).

    Attributes:
        run_id: the run that was canceled.
        error: why, when known (a timeout gives `ErrorInfo(type="TimeoutError")`).
    """

    def __init__(self, run_id: str, error: ErrorInfo | None) -> None:
        why = f": {error.message}" if error is not None else ""
        super().__init__(f"run {run_id} was canceled{why}")
        self.run_id = run_id
        self.error = error
