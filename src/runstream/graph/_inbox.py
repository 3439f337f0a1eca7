"""`Inbox`: where the answers to a run's questions arrive."""

from __future__ import annotations

from typing import Any

import anyio

__all__ = ["AlreadyAnswered", "Inbox", "UnknownRequest", "check_results"]


class UnknownRequest(KeyError):
    """No run waits for an answer with this request id (never asked, or over)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown request"


class AlreadyAnswered(RuntimeError):
    """The request was answered already: an answer counts once."""


def check_results(request_id: str, value: Any, results: int) -> None:
    """Check an answer to tool calls: a list with one result per call.

    Raises:
        ValueError: it is not.
    """
    if not isinstance(value, list) or len(value) != results:
        raise ValueError(
            f"the answer to {request_id!r} must be a list of {results} results "
            f"(one per tool call), got {value!r}"
        )


class _Slot:
    __slots__ = ("answered", "event", "results", "run_id", "value")

    def __init__(self, run_id: str, results: int | None) -> None:
        self.run_id = run_id  # the root run of the run that asked
        self.results = results  # for tool calls: how many results the answer holds
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

    def answer(self, request_id: str, value: Any, *, run_id: str | None = None) -> None:
        """Answer the request `request_id` with `value` (JSON).

        The answer to tool calls (`AwaitExternalTools`) is a list with one
        result per call. With `run_id`, the request must be one of that run
        (its root run's id: a child run asks through its root).

        Raises:
            UnknownRequest: no run (of `run_id`) waits for `request_id`.
            AlreadyAnswered: it was answered already.
            ValueError: the answer to tool calls is not a list of one result
                per call (the request stays open).
        """
        slot = self._open.get(request_id)
        if slot is None or (run_id is not None and slot.run_id != run_id):
            where = "" if run_id is None else f" in run {run_id!r}"
            raise UnknownRequest(f"no run waits for an answer to {request_id!r}{where}")
        if slot.answered:
            raise AlreadyAnswered(f"request {request_id!r} was answered already")
        if slot.results is not None:
            check_results(request_id, value, slot.results)
        slot.answered = True
        slot.value = value
        slot.event.set()

    def waiting_in(self, run_id: str) -> list[str]:
        """The request ids run `run_id` (a root run, with its children) waits for now."""
        return [
            rid for rid, slot in self._open.items() if slot.run_id == run_id and not slot.answered
        ]

    def _ask(self, request_id: str, run_id: str, results: int | None = None) -> _Slot:
        slot = self._open[request_id] = _Slot(run_id, results)
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
