"""A run's events as a UI protocol's SSE stream (`?format=ag-ui|ai-sdk`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.exceptions import HTTPException

from ..buses import HistoryGone, RunBus
from ..codec import DecodeError
from ..protocols import FORMATS, FrameId, sse, translator

__all__ = ["DONE", "check_format", "format_headers", "protocol_frames", "protocol_left"]

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


async def protocol_frames(
    bus: RunBus,
    run_id: str,
    format: str,
    after: FrameId | None,
    show: Callable[[Any], Any] | None,
    heartbeat: float | None,
    thread_id: str | None = None,
) -> AsyncIterator[bytes]:
    """The run's frames in `format` after frame `after`, as SSE writes.

    A protocol's frames depend on what came before (a message's start, the
    steps open), so the run is translated from its first event and the frames
    up to `after` are left out: a resume is exact at any frame. Ends with
    `data: [DONE]` for the AI SDK once the run has ended.
    """
    translate = translator(format, thread_id=thread_id).feed
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
                if show is not None:
                    event = show(event)
                    if event is None:
                        continue
                seq = event.seq
                for part, data in enumerate(translate(event)):
                    if seq < skip_seq or (seq == skip_seq and part <= skip_part):
                        continue
                    out.append(sse(seq, part, data))
            if out:
                yield retry + b"".join(out)
                retry = b""
    except HistoryGone:
        return
    except DecodeError as exc:
        _log.warning("run %s: ending its stream at an unreadable entry: %s", run_id, exc)
        return
    if format == "ai-sdk":
        yield retry + DONE


async def protocol_left(
    bus: RunBus, run_id: str, format: str, after: FrameId, show: Callable[[Any], Any] | None
) -> bool:
    """Whether an ended run has frames after `after` in `format`."""
    async for chunk in protocol_frames(bus, run_id, format, after, show, None):
        if b"data: {" in chunk:
            return True
    return False
