"""Runs over the network: a Starlette app with SSE and WebSocket, and run buses.

Needs the `server` extra: `pip install "runstream[server]"`.

Example:
    ```python
    from runstream.server import create_app

    app = create_app({"researcher": researcher})  # then: uvicorn module:app
    ```
"""

try:
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        'runstream.server needs the server extra: pip install "runstream[server]"'
    ) from exc

from ..buses import Entry, HistoryGone, MemoryBus, RunBus, RunRecord, RunStatus, UnknownRun
from ._app import Limits, create_app, stop_runs

__all__ = [
    "Entry",
    "HistoryGone",
    "Limits",
    "MemoryBus",
    "RunBus",
    "RunRecord",
    "RunStatus",
    "UnknownRun",
    "create_app",
    "stop_runs",
]
