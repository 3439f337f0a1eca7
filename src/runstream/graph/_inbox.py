"""`Inbox`: where the answers to a run's questions arrive."""

from __future__ import annotations

from typing import Any

import anyio

__all__ = ["AlreadyAnswered", "Inbox", "UnknownRequest"]


class UnknownRequest(KeyError):
    """No run waits for an answer with this request id (never asked, or over)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown request"


class AlreadyAnswered(RuntimeError):
    """The request was answered already: an answer counts once."""


class _Slot:
    __slots__ = ("answered", "event", "value")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.answered = False
        self.value: Any = None


class Inbox:
    """Answers for the questions of the runs given it: `app.run(x, inbox=inbox)`.

    A node that asks (`await ctx.ask(question)`, `await ctx.external_tools(calls)`)
    emits a request with a `request_id` and waits; `inbox.answer(request_id,
    value)` wakes it. One inbox may serve any number of runs.

    Example:
        ```python
        inbox = rs.Inbox()
        async for event in app.run("Book a table", inbox=inbox):
            if isinstance(event, rs.AwaitClarification):
                inbox.answer(event.request_id, input(event.question))
        ```
    """

    def __init__(self) -> None:
        self._open: dict[str, _Slot] = {}

    @property
    def waiting(self) -> list[str]:
        """The request ids a run waits for now."""
        return [rid for rid, slot in self._open.items() if not slot.answered]

    def answer(self, request_id: str, value: Any) -> None:
        """Answer the request `request_id` with `value` (JSON).

        Raises:
            UnknownRequest: no run waits for `request_id`.
            AlreadyAnswered: it was answered already.
        """
        slot = self._open.get(request_id)
        if slot is None:
            raise UnknownRequest(f"no run waits for an answer to {request_id!r}")
        if slot.answered:
            raise AlreadyAnswered(f"request {request_id!r} was answered already")
        slot.answered = True
        slot.value = value
        slot.event.set()

    def _ask(self, request_id: str) -> _Slot:
        slot = self._open[request_id] = _Slot()
        return slot

    def _close(self, request_id: str) -> None:
        self._open.pop(request_id, None)

    async def _wait(self, request_id: str, slot: _Slot, within: float | None) -> Any:
        """The answer; TimeoutError after `within` seconds. The request ends either way."""
        try:
            with anyio.fail_after(within):
                await slot.event.wait()
            return slot.value
        finally:
            self._close(request_id)
