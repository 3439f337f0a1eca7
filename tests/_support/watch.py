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
