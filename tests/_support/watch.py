"""`Watched`: a memory sink that tells when it holds enough items, in place of polling."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

import runstream as rs


class Watched(rs.MemorySink[rs.Event]):
    """A `MemorySink` whose `reached(n)` returns once it holds `n` items."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = anyio.Event()

    async def send_batch(self, items: Sequence[rs.Event]) -> None:
        await super().send_batch(items)
        self._changed.set()

    async def close(self) -> None:
        await super().close()
        self._changed.set()

    async def reached(self, n: int, within: float = 30.0) -> list[rs.Event]:
        """The items, once there are at least `n` (fails after `within` seconds)."""
        with anyio.fail_after(within):
            while len(self.items) < n:
                if self.closed:
                    raise AssertionError(f"closed with {len(self.items)} items, not {n}")
                self._changed = anyio.Event()
                await self._changed.wait()
        return self.items


async def on_bus(bus: rs.buses.RunBus, run_id: str, events: int = 1, within: float = 10.0) -> None:
    """Return once the bus holds `events` events of the run.

    A sink attached next to the bus's own may be ahead of it (each sink has a
    queue of its own): a reader must not ask the bus before the bus has the run.
    The bus announces nothing to a caller, so this checks every 10 ms.
    """
    with anyio.fail_after(within):
        while True:
            record = await bus.record(run_id)
            if record is not None and record.events >= events:
                return
            await anyio.sleep(0.01)
