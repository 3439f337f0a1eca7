"""Run buses: where each run's events are kept for any number of readers.

A bus keeps the events of each root run (its child runs' events included, in
`seq` order) and hands them to readers: history first, then live, resumable
after any `seq`. The server keeps its runs on one; a program can use one
alone: `bus.sink()` is a `Sink` that writes runs to it, `bus.events(run_id)`
reads one back as a cold `Observable[Event]`.

Example:
    ```python
    from runstream.buses import MemoryBus

    bus = MemoryBus()
    seen = rs.MemorySink[rs.Event]()
    await rs.drain(app.run("hi"), bus.sink(), seen)
    run_id = seen.items[0].run_id
    async for event in bus.events(run_id, after=41):
        print(event.seq, event.type)
    ```
"""

from typing import TYPE_CHECKING, Any

from ._io import BusSink, bus_events
from ._memory import MemoryBus
from ._protocol import (
    Entry,
    HistoryGone,
    Job,
    RunBus,
    RunRecord,
    RunStatus,
    UnknownRun,
    WorkBus,
    sse_frames,
)
from ._url import open_bus

if TYPE_CHECKING:
    from ._nats import NatsBus
    from ._redis import RedisBus


def __getattr__(name: str) -> Any:
    # The broker buses import their client library (an extra): only when asked for.
    if name == "RedisBus":
        from ._redis import RedisBus

        return RedisBus
    if name == "NatsBus":
        from ._nats import NatsBus

        return NatsBus
    raise AttributeError(f"module 'runstream.buses' has no attribute {name!r}")


__all__ = [
    "BusSink",
    "Entry",
    "HistoryGone",
    "Job",
    "MemoryBus",
    "NatsBus",
    "RedisBus",
    "RunBus",
    "RunRecord",
    "RunStatus",
    "UnknownRun",
    "WorkBus",
    "bus_events",
    "open_bus",
    "sse_frames",
]
