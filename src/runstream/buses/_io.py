"""Any bus used alone: a sink that writes runs to it, and a run read back as events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from reactivex import Observable

from ..events import ErrorInfo, Event, Phase, Workflow
from ..graph import RunFailed
from ..sources import from_async_iterable
from ._protocol import RunBus

__all__ = ["BusSink", "bus_events"]


class BusSink:
    """A `Sink[Event]` that writes every run it sees to a bus.

    A root run is opened on the bus at its first event (its graph is the
    event's `agent`); the events of its child runs go to the root's log, as a
    run's stream carries them. Any number of runs may go through one sink.

    Args:
        bus: the bus to write to.
        owner: the owner recorded for each run opened (None: nobody's).
    """

    def __init__(self, bus: RunBus, *, owner: str | None = None) -> None:
        self.bus = bus
        self.owner = owner
        self._roots: dict[str, str] = {}  # run id -> its root run's id, for runs not ended

    async def send(self, event: Event) -> None:
        """Write one event."""
        await self.send_batch((event,))

    async def send_batch(self, events: Sequence[Event]) -> None:
        """Write events, in order, one `append` per run among them."""
        pending: dict[str, list[Event]] = {}
        roots = self._roots
        for event in events:
            root = roots.get(event.run.run_id) or await self._root_of(event)
            pending.setdefault(root, []).append(event)
            if type(event) is Workflow and event.phase.is_terminal:
                roots.pop(event.run_id, None)
        for root, batch in pending.items():
            await self.bus.append(root, batch)

    async def close(self) -> None:
        """Nothing to release: the bus belongs to its owner."""

    async def _root_of(self, event: Event) -> str:
        """The root of a run seen for the first time (a root run is opened on the bus)."""
        run = event.run
        if run.parent_run_id is None:
            await self.bus.open(run.run_id, graph=run.agent, owner=self.owner)
            root: str | None = run.run_id
        else:
            root = self._roots.get(run.parent_run_id)
        if root is None:
            raise ValueError(
                f"event of run {run.run_id} whose parent {run.parent_run_id} this sink "
                "has not seen: attach the sink to the root run's stream"
            )
        self._roots[run.run_id] = root
        return root


def bus_events(bus: RunBus, run_id: str, after: int | None = None) -> Observable[Event]:
    """A run on `bus` as a cold `Observable[Event]`: history after `after`, then live.

    Completes after the root run's terminal event; errors with `RunFailed`
    after a failed run's terminal event (as a local run does), `UnknownRun`
    for a run the bus does not know and `HistoryGone` when the events after
    `after` are no longer kept. Supports `async for`.
    """

    async def read() -> AsyncIterator[Event]:
        async for batch in bus.read(run_id, after):
            for entry in batch:
                event = entry.event
                yield event
                if (
                    type(event) is Workflow
                    and event.phase is Phase.FAILED
                    and event.run.parent_run_id is None
                ):
                    error = event.error or ErrorInfo("Error", "the run failed")
                    raise RunFailed(event.run_id, event.agent, error)

    return from_async_iterable(read)
