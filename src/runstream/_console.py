"""Live terminal rendering of a run, as a person wants to read it.

`ConsoleRenderer.handle` takes events one by one and prints them with rich
styling, sequentially (no live regions), so the output also reads well when
piped to a file:

```text
· planning
Let me look this up.
▸ web_search(query="solar power")
▸ summarizer(input="...")
  The summary streams here, indented under its tool.
✓ web_search  0.52s  → {"hits":3}
✓ summarizer  0.80s
Solar power is ...
✓ completed in 1.23s
```
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from rich.console import Console
from rich.text import Text

from .events import (
    JSON,
    AgentRunStarted,
    AssistantReply,
    AwaitClarification,
    AwaitExternalTools,
    Custom,
    ErrorInfo,
    Event,
    Phase,
    PlannerThought,
    StateUpdate,
    ToolEnd,
    ToolStart,
    ToolUpdate,
    Usage,
    Workflow,
)

__all__ = ["ConsoleRenderer"]

_ARGS_WIDTH = 60
_PREVIEW_WIDTH = 60


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _truncate(text: str, width: int) -> str:
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= width else text[: width - 1] + "…"


def _format_args(payload: JSON) -> str:
    if isinstance(payload, Mapping):
        inner = ", ".join(f"{k}={_compact(v)}" for k, v in payload.items())
    elif payload is None:
        inner = ""
    else:
        inner = _compact(payload)
    return _truncate(inner, _ARGS_WIDTH)


def _preview(result: JSON) -> str:
    if result is None:
        return ""
    text = result if isinstance(result, str) else _compact(result)
    return _truncate(text, _PREVIEW_WIDTH)


def _error_text(error: ErrorInfo | None) -> str:
    if error is None:
        return "unknown error"
    return f"{error.type}: {error.message}" if error.message else error.type


class ConsoleRenderer:
    """Render a run's events on a rich console, one event at a time.

    Reply and thought deltas stream inline; tool calls get a start line and an
    end line with their duration; a child run is indented under the tool that
    started it. `summary()` prints the tokens used per model and the outcome.

    Args:
        console: where to print; a new `Console()` (stdout) by default.
        show_thoughts: print `PlannerThought` text (dim, italic).
        show_state: verbose mode: also print `StateUpdate`, `Custom` and
            `Usage` events, and every phase of child runs.

    Example:
        ```python
        renderer = ConsoleRenderer()
        async for event in app.run("What is solar power?"):
            renderer.handle(event)
        renderer.summary()
        ```
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        show_thoughts: bool = True,
        show_state: bool = False,
    ) -> None:
        self.console = console if console is not None else Console()
        self.show_thoughts = show_thoughts
        self.show_state = show_state
        self._depth: dict[str, int] = {}
        self._started: dict[str, float] = {}
        # (run_id, message_id) of the streamed line still open, if any.
        self._open: tuple[str, str] | None = None
        self._usage: dict[str, tuple[int, int]] = {}
        self._agent_calls: set[str] = set()
        self._tools_ok = 0
        self._tools_failed = 0
        self._outcome: Workflow | None = None
        self._duration: float | None = None
        self._interrupted = False

    @property
    def outcome(self) -> Phase | None:
        """The root run's terminal phase, once it has ended."""
        return self._outcome.phase if self._outcome is not None else None

    @property
    def usage(self) -> dict[str, tuple[int, int]]:
        """Tokens so far per model, as `(input_tokens, output_tokens)`."""
        return dict(self._usage)

    # --- dispatch ---------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """Print `event` (or remember what it says, for events not shown)."""
        depth = self._depth_of(event)
        match event:
            case AssistantReply() | PlannerThought():
                self._text(event, depth)
            case ToolStart(tool_name=name, payload=payload):
                line = Text("▸ ", style="cyan")
                line.append(name, style="bold")
                line.append(f"({_format_args(payload)})", style="dim")
                self._line(line, depth)
            case ToolUpdate(tool_name=name, progress=progress, message=message):
                if progress is None and not message:
                    return
                parts = [f"… {name}"]
                if progress is not None:
                    parts.append(f"{progress:.0%}")
                if message:
                    parts.append(message)
                self._line(Text(" ".join(parts), style="dim"), depth)
            case ToolEnd():
                self._tool_end(event, depth)
            case AgentRunStarted(child_run_id=child, tool_call_id=call_id):
                self._depth[child] = depth + 1
                # The child's own lines already show what it produced.
                self._agent_calls.add(call_id)
            case Usage(model=model, input_tokens=tin, output_tokens=tout):
                before_in, before_out = self._usage.get(model, (0, 0))
                self._usage[model] = (before_in + tin, before_out + tout)
                if self.show_state:
                    self._line(Text(f"◦ usage {model}: {tin} in, {tout} out", style="dim"), depth)
            case Workflow():
                self._workflow(event, depth)
            case AwaitClarification(question=question):
                line = Text("? ", style="bold yellow")
                line.append(question)
                self._line(line, depth)
            case AwaitExternalTools(calls=calls):
                names = ", ".join(c.tool_name for c in calls) or "none"
                self._line(Text(f"⧗ waiting for external tools: {names}", style="yellow"), depth)
            case StateUpdate(updates=updates):
                if self.show_state:
                    body = _truncate(_compact(dict(updates)), 80)
                    self._line(Text(f"◦ state {event.node or ''} {body}", style="dim"), depth)
            case Custom(name=name, data=data):
                if self.show_state:
                    body = _truncate(_compact(data), 80)
                    self._line(Text(f"◦ {name} {body}", style="dim"), depth)

    def summary(self) -> None:
        """Print tokens per model and in total, the tool calls, and how the run ended.

        ```text
        scripted-large      83 in      83 out
        total               83 in      83 out  (166 tokens)
        tools           3 ok, 0 failed
        outcome         ✓ completed in 1.23s
        ```
        """
        self._close_line()
        self._print(Text(""))
        width = max(len(m) for m in [*self._usage, "outcome"])
        total_in = sum(tin for tin, _ in self._usage.values())
        total_out = sum(tout for _, tout in self._usage.values())
        for model, (tin, tout) in self._usage.items():
            self._print(Text(f"{model:<{width}}  {tin:>6} in  {tout:>6} out", style="dim"))
        tokens = Text(f"{'total':<{width}}  {total_in:>6} in  {total_out:>6} out", style="bold")
        tokens.append(f"  ({total_in + total_out} tokens)", style="dim")
        self._print(tokens)
        tools = f"{self._tools_ok} ok, {self._tools_failed} failed"
        self._print(Text(f"{'tools':<{width}}  {tools}"))
        outcome = Text(f"{'outcome':<{width}}  ")
        self._print(outcome + self._outcome_text())

    def interrupted(self) -> None:
        """Note that the user stopped the run (Ctrl-C) before it ended."""
        self._line(Text("■ interrupted", style="bold yellow"), 0)
        self._interrupted = True

    # --- pieces -----------------------------------------------------------------

    def _depth_of(self, event: Event) -> int:
        run_id = event.run_id
        depth = self._depth.get(run_id)
        if depth is None:
            parent = event.parent_run_id
            depth = 0 if parent is None else self._depth.get(parent, 0) + 1
            self._depth[run_id] = depth
        return depth

    def _text(self, event: AssistantReply | PlannerThought, depth: int) -> None:
        is_thought = isinstance(event, PlannerThought)
        if is_thought and not self.show_thoughts:
            return
        key = (event.run_id, event.message_id)
        indent = "  " * depth
        if self._open != key:
            self._close_line()
            if not event.text and event.done:
                return
            self._open = key
            if indent:
                self.console.print(Text(indent), end="", soft_wrap=True)
        chunk = event.text.replace("\n", "\n" + indent) if depth else event.text
        if chunk:
            style = "dim italic" if is_thought else ("dim" if event.internal else "")
            self.console.print(Text(chunk, style=style), end="", soft_wrap=True)
        if event.done:
            self._close_line()

    def _tool_end(self, event: ToolEnd, depth: int) -> None:
        ok = event.error is None
        if ok:
            self._tools_ok += 1
        else:
            self._tools_failed += 1
        is_agent = event.tool_call_id in self._agent_calls
        self._agent_calls.discard(event.tool_call_id)
        line = Text("✓ " if ok else "✗ ", style="green" if ok else "red")
        line.append(event.tool_name, style="bold")
        line.append(f"  {event.duration:.2f}s", style="dim")
        if not ok:
            line.append(f"  {_error_text(event.error)}", style="red")
        elif not is_agent and (preview := _preview(event.result)):
            line.append(f"  → {preview}", style="dim")
        self._line(line, depth)

    def _workflow(self, event: Workflow, depth: int) -> None:
        phase = event.phase
        is_root = event.parent_run_id is None
        if phase is Phase.STARTED:
            self._started[event.run_id] = event.ts
        if not phase.is_terminal:
            if (is_root and phase is not Phase.STARTED) or self.show_state:
                self._line(Text(f"· {phase.value}", style="dim"), depth)
            return
        started = self._started.pop(event.run_id, None)
        duration = event.ts - started if started is not None else None
        if is_root:
            self._outcome = event
            self._duration = duration
            self._line(self._outcome_text(), depth)
        elif phase is not Phase.COMPLETED:
            line = self._terminal_text(event, duration)
            line.append(f"  ({event.agent})", style="dim")
            self._line(line, depth)

    def _outcome_text(self) -> Text:
        if self._outcome is None:
            if self._interrupted:
                return Text("■ interrupted", style="bold yellow")
            return Text("run did not finish", style="yellow")
        return self._terminal_text(self._outcome, self._duration)

    @staticmethod
    def _terminal_text(event: Workflow, duration: float | None) -> Text:
        if event.phase is Phase.COMPLETED:
            took = f" in {duration:.2f}s" if duration is not None else ""
            return Text(f"✓ completed{took}", style="bold green")
        if event.phase is Phase.FAILED:
            return Text(f"✗ failed: {_error_text(event.error)}", style="bold red")
        reason = f": {_error_text(event.error)}" if event.error is not None else ""
        return Text(f"■ canceled{reason}", style="bold yellow")

    def _line(self, text: Text, depth: int) -> None:
        self._close_line()
        if depth:
            text = Text("  " * depth) + text
        self._print(text)

    def _print(self, text: Text) -> None:
        self.console.print(text, soft_wrap=True)

    def _close_line(self) -> None:
        if self._open is not None:
            self._open = None
            self.console.print()
