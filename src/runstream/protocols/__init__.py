"""UI protocols: a root run's events as AG-UI events or AI SDK UI message chunks.

```python
from runstream import ops

app.run("hi").pipe(ops.to_ag_ui())     # Observable[Frame] of AG-UI 1.0 events
app.run("hi").pipe(ops.to_ai_sdk())    # Observable[Frame] of UI message chunks
```

Each `Frame(seq, part, data)` is one protocol object in its wire form, made
from the run event `seq` (`part` counts the frames one event made). The
server sends them as SSE with `id: {seq}` or `id: {seq}.{part}`, so
`Last-Event-ID` resumes exactly after any frame. Translation is pure: no I/O.
"""

from ._ag_ui import AgUiTranslator, to_ag_ui
from ._ai_sdk import AiSdkTranslator, to_ai_sdk
from ._frame import Frame, FrameId, Translator, frame_id, parse_frame_id, sse

__all__ = [
    "FORMATS",
    "AgUiTranslator",
    "AiSdkTranslator",
    "Frame",
    "FrameId",
    "Translator",
    "frame_id",
    "parse_frame_id",
    "sse",
    "to_ag_ui",
    "to_ai_sdk",
    "translator",
]

FORMATS = ("runstream", "ag-ui", "ai-sdk")
"""The stream formats the server speaks (`?format=`)."""


def translator(
    format: str,
    *,
    thread_id: str | None = None,
    run_id: str | None = None,
    message_id: str | None = None,
) -> Translator:
    """A fresh translator for `format` (`"ag-ui"` or `"ai-sdk"`).

    `thread_id` and `run_id` are AG-UI's `threadId` and `runId`; `message_id`
    the AI SDK's assistant message id (each defaults to what the run says).

    Raises:
        ValueError: `format` is not a protocol format.
    """
    if format == "ag-ui":
        return AgUiTranslator(thread_id, run_id)
    if format == "ai-sdk":
        return AiSdkTranslator(message_id)
    raise ValueError(f"unknown format {format!r}; formats: {', '.join(FORMATS)}")
