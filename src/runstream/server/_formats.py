"""A run's events as a UI protocol's SSE stream (`?format=ag-ui|ai-sdk`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

from starlette.exceptions import HTTPException

from ..buses import HistoryGone, RunBus
from ..codec import DecodeError
from ..protocols import FORMATS, FrameId, translator

__all__ = ["DONE", "Translations", "check_format", "format_headers", "protocol_left"]

_log = logging.getLogger("runstream.server")

DONE = b"data: [DONE]\n\n"
"""How an AI SDK UI message stream ends."""

_AI_SDK_HEADERS = {"x-vercel-ai-ui-message-stream": "v1"}


def check_format(value: Any) -> str:
    """The format named by a request, checked (422 lists the known ones)."""
    if value is None:
        return "runstream"
    if value not in FORMATS:
        raise HTTPException(422, f"format: unknown format {value!r}; formats: {', '.join(FORMATS)}")
    return str(value)


def format_headers(format: str) -> dict[str, str]:
    """Response headers a format's clients look for."""
    return _AI_SDK_HEADERS if format == "ai-sdk" else {}


class _Translated:
    """One run's frames in one format, encoded once and shared by its readers.

    Every reader reads the run from its first event, in `seq` order, so the
    translator's state at any `seq` is the same whoever gets there first:
    the first reader to reach an event translates and encodes it, the others
    take its frames. Kept while a reader is reading.
    """

    __slots__ = ("encode", "frames", "readers")

    def __init__(self, encode: Callable[[Any], list[bytes]]) -> None:
        self.encode = encode
        self.frames: list[list[bytes]] = []  # per seq: its frames as SSE messages
        self.readers = 0

    def of(self, seq: int, event: Any) -> list[bytes]:
        """The SSE messages of the event at `seq` (None: hidden by the profile)."""
        frames = self.frames
        if seq < len(frames):
            return frames[seq]
        while len(frames) < seq:  # never happens in order; kept aligned if it does
            frames.append([])
        made = [] if event is None else self.encode(event)
        frames.append(made)
        return made


class Translations:
    """The runs being read in a protocol format, by (run, format, profile)."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, str, str | None], _Translated] = {}

    async def frames(
        self,
        bus: RunBus,
        run_id: str,
        format: str,
        after: FrameId | None,
        show: Callable[[Any], Any] | None,
        profile: str | None,
        heartbeat: float | None,
        names: dict[str, str] | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """The run's frames in `format` after frame `after`, as SSE writes.

        A protocol's frames depend on what came before (a message's start,
        the steps open), so the run is read from its first event and the
        frames up to `after` are left out: a resume is exact at any frame.
        Ends with `data: [DONE]` for the AI SDK once the run has ended.
        `names` are the ids the client gave the run (see `translator`): AG-UI's
        `thread_id` and `run_id`, the AI SDK's `message_id`.
        """
        key = (run_id, format, profile)
        shared = self.runs.get(key)
        if shared is None:
            shared = self.runs[key] = _Translated(translator(format, **(names or {})).encode)
        shared.readers += 1
        skip_seq, skip_part = after if after is not None else (-1, 0)
        retry = b"retry: 1000\n"
        try:
            async for batch in bus.read(run_id, None, heartbeat=heartbeat):
                if not batch:
                    yield b": keep-alive\n\n"
                    continue
                out: list[bytes] = []
                for entry in batch:
                    event = entry.event
                    seq = event.seq
                    if show is not None:
                        event = show(event)
                    made = shared.of(seq, event)
                    if seq > skip_seq:
                        out += made
                    elif seq == skip_seq:
                        out += made[skip_part + 1 :]
                if out:
                    yield retry + b"".join(out)
                    retry = b""
        except HistoryGone:
            return
        except DecodeError as exc:
            _log.warning("run %s: ending its stream at an unreadable entry: %s", run_id, exc)
            return
        finally:
            shared.readers -= 1
            if not shared.readers and self.runs.get(key) is shared:
                del self.runs[key]
        if format == "ai-sdk":
            yield retry + DONE


async def protocol_left(frames: AsyncGenerator[bytes, None]) -> bool:
    """Whether `frames` (an ended run's, after a position) hold any frame."""
    async with aclosing(frames):
        async for chunk in frames:
            if b"data: {" in chunk:
                return True
    return False
