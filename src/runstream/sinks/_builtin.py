"""The `Sink` protocol and the simple built-in sinks."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from rich.console import Console

from .._console import ConsoleRenderer
from ..codec import dumps
from ..events import Event

__all__ = ["CallbackSink", "ConsoleSink", "JsonlSink", "MemorySink", "Sink"]

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


@runtime_checkable
class Sink(Protocol[T_contra]):
    """Where a stream goes: `send` each item, then `close` once.

    `attach` never overlaps two calls to one sink and calls `close` exactly
    once, after the last `send`. A sink may also define
    `async send_batch(items)`; then everything queued for it is handed over in
    one call, unless `send` is defined closer to the sink's class (a subclass
    that overrides `send` gets every item there).

    The protocol is contravariant in the item type: a `Sink[Event]` can be
    attached to an `Observable[ToolEnd]`, a `Sink[ToolEnd]` not to an
    `Observable[Event]`.
    """

    async def send(self, item: T_contra, /) -> None:
        """Deliver one item."""

    async def close(self) -> None:
        """Release resources; no `send` follows."""


class MemorySink(Generic[T]):
    """Keeps every item in `items`; `closed` turns True on close.

    It takes queued items in batches (`send_batch`); a subclass that overrides
    `send` gets every item through its `send` instead.

    Example:
        ```python
        sink = rs.MemorySink()
        await rs.drain(app.run(x), sink)
        sink.items[-1]  # the terminal Workflow event
        ```
    """

    def __init__(self) -> None:
        self.items: list[T] = []
        self.closed = False

    async def send(self, item: T) -> None:
        """Append `item`."""
        self.items.append(item)

    async def send_batch(self, items: Sequence[T]) -> None:
        """Append every item of `items`."""
        self.items.extend(items)

    async def close(self) -> None:
        """Mark the sink closed."""
        self.closed = True


class CallbackSink(Generic[T]):
    """Calls `fn(item)` for each item; `fn` may be sync or async.

    Args:
        fn: called with each item, in order, never concurrently.
        on_close: called once when the stream ends, if given (sync or async).
    """

    def __init__(
        self,
        fn: Callable[[T], Awaitable[object] | object],
        *,
        on_close: Callable[[], Awaitable[object] | object] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"CallbackSink needs a callable, got {type(fn).__name__}")
        self._fn = fn
        self._on_close = on_close

    async def send(self, item: T) -> None:
        """Call the function with `item` (awaiting it when it is async)."""
        result = self._fn(item)
        if inspect.isawaitable(result):
            await result

    async def close(self) -> None:
        """Call `on_close`, if given."""
        if self._on_close is not None:
            result = self._on_close()
            if inspect.isawaitable(result):
                await result


class JsonlSink:
    """Writes each event as one line of codec JSON to `path`.

    The file is created (or truncated) when the sink is made, written in
    batches, and flushed and closed on `close`. Read it back with
    [`replay_jsonl`][runstream.sources.replay_jsonl].

    Raises:
        OSError: the file cannot be opened for writing (raised by the constructor).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = self.path.open("wb")

    async def send(self, item: Event) -> None:
        """Write one event."""
        self._file.write(dumps(item) + b"\n")

    async def send_batch(self, items: Sequence[Event]) -> None:
        """Write several events at once."""
        self._file.write(b"".join(dumps(item) + b"\n" for item in items))

    async def close(self) -> None:
        """Flush and close the file."""
        if not self._file.closed:
            self._file.close()


class ConsoleSink:
    """Renders events live on a terminal, the way `runstream demo` does.

    Streaming text is printed as it arrives, tool calls with their durations,
    child runs indented under the tool that started them; `close` prints the
    token usage summary.

    Args:
        console: the rich console to print to (a new one on stdout by default).
        show_thoughts: print planner thoughts.
        show_state: also print state updates and custom events.
        summary: print the usage summary on close.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        show_thoughts: bool = True,
        show_state: bool = False,
        summary: bool = True,
    ) -> None:
        self.renderer = ConsoleRenderer(console, show_thoughts=show_thoughts, show_state=show_state)
        self._summary = summary

    async def send(self, item: Event) -> None:
        """Render one event."""
        self.renderer.handle(item)

    async def close(self) -> None:
        """Print the summary (unless disabled)."""
        if self._summary:
            self.renderer.summary()


def describe(sink: Any) -> str:
    """A short name for a sink in messages."""
    return type(sink).__name__
