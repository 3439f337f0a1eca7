"""Graphs and runs: build a `StateGraph`, compile it, run it as a cold stream.

Example:
    ```python
    g = rs.StateGraph(State, name="researcher")
    g.add_node("search", search)
    g.add_edge(rs.START, "search")
    app = g.compile()
    async for event in app.run({"question": "why is the sky blue?"}):
        ...
    ```
"""

from ._builder import StateGraph
from ._checkpoint import (
    Await,
    Checkpoint,
    Checkpointer,
    CheckpointError,
    MemoryCheckpointer,
    SqliteCheckpointer,
    ThreadBusy,
)
from ._compiled import CompiledGraph
from ._context import RunContext, TextStream, ToolCallHandle
from ._engine import RESUMED
from ._errors import GraphError, RoutingError, RunCanceled, RunFailed, StepLimitError
from ._inbox import AlreadyAnswered, Inbox, UnknownRequest, check_results
from ._spec import END, START, Command
from ._stream import RunStream

__all__ = [
    "END",
    "RESUMED",
    "START",
    "AlreadyAnswered",
    "Await",
    "Checkpoint",
    "CheckpointError",
    "Checkpointer",
    "MemoryCheckpointer",
    "SqliteCheckpointer",
    "ThreadBusy",
    "Command",
    "CompiledGraph",
    "GraphError",
    "Inbox",
    "RoutingError",
    "RunCanceled",
    "RunContext",
    "RunFailed",
    "RunStream",
    "StateGraph",
    "StepLimitError",
    "TextStream",
    "ToolCallHandle",
    "UnknownRequest",
    "check_results",
]
