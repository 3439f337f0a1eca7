"""`Watched`: a memory sink that tells when it holds enough items, in place of polling."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

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


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, *, within: float = 10.0, every: float = 0.1
) -> None:
    """Return once `await check()` is true, asking every `every` seconds.

    Only for state that nothing announces (a broker expiring keys or
    messages by itself, a bus catching up with a sink beside it); anything
    that can be waited for is waited for instead.

    Raises:
        AssertionError: `what` did not happen within `within` seconds.
    """
    with anyio.move_on_after(within):
        while True:
            if await check():
                return
            await anyio.sleep(every)
    raise AssertionError(f"{what} did not happen within {within:g} s")


async def on_bus(bus: rs.buses.RunBus, run_id: str, events: int = 1, within: float = 10.0) -> None:
    """Return once the bus holds `events` events of the run.

    A sink attached next to the bus's own may be ahead of it (each sink has a
    queue of its own): a reader must not ask the bus before the bus has the run.
    The bus announces nothing to a caller, so this checks every 10 ms.
    """

    async def there() -> bool:
        record = await bus.record(run_id)
        return record is not None and record.events >= events

    await eventually(
        there, f"{events} events of run {run_id} on the bus", within=within, every=0.01
    )


class Stuck:
    """A tool (`.tool`, `slow(city)`) that never returns: `entered` once it runs,
    `cancelled` once cancelled."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.cancelled = False

        async def slow(city: str) -> str:
            """Waits until cancelled."""
            self.entered.set()
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                self.cancelled = True
                raise
            return city

        self.tool = slow

    async def dispose_when_entered(self, stream: rs.RunStream) -> list[rs.Event]:
        """Attach `stream`, cancel it once the tool runs; its events, checked canceled."""
        seen = Watched()
        attachment = rs.attach(stream, seen)
        await self.entered.wait()
        attachment.cancel()
        await attachment.wait()
        assert self.cancelled
        return seen.items
