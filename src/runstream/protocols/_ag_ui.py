"""A root run's events as AG-UI 1.0 events (camelCase wire form)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from reactivex import Observable

from ..events import (
    AgentRunStarted,
    AssistantReply,
    AwaitClarification,
    AwaitExternalTools,
    Custom,
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
from ._frame import Encoding, Frame, operator

__all__ = ["AgUiTranslator", "to_ag_ui"]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def to_ag_ui(thread_id: str | None = None) -> Callable[[Observable[Event]], Observable[Frame]]:
    """A root run's events as AG-UI events, one `Frame` each.

    `thread_id` is `RUN_STARTED.threadId` (default: the run's `thread_id`,
    else its `run_id`); `runId` is the run's id. Child runs are AG-UI subagents: their events carry
    `subagentRunId`. Internal replies and thoughts are left out. See
    docs/protocols/ag-ui.md for the whole mapping.
    """
    return operator(lambda: AgUiTranslator(thread_id))


class AgUiTranslator(Encoding):
    """Turns one root run's events, fed in `seq` order, into AG-UI events.

    `thread_id` and `run_id` are what `RUN_STARTED` and `RUN_FINISHED` say
    (default: the run's thread, else its id; the run's id): a server echoes
    those of the client's `RunAgentInput`.
    """

    kinds = ("TEXT_MESSAGE_CONTENT", "REASONING_MESSAGE_CONTENT")
    id_key = "messageId"

    def __init__(self, thread_id: str | None = None, run_id: str | None = None) -> None:
        self.thread_id = thread_id
        self.run_id = run_id or ""
        self.root = ""
        self.open: set[str] = set()  # message ids with a START sent
        self.steps: dict[tuple[str, str], str] = {}  # (run id, node) -> the node, open
        self.links: dict[str, AgentRunStarted] = {}  # child run id -> its link
        self.usage: dict[str, list[int]] = {}
        self.interrupts: list[dict[str, Any]] = []
        self.pending: list[str] = []  # external tool calls the client runs
        self.announced: set[str] = set()  # tool calls whose START..END are out
        self.said: dict[tuple[str, str | None], str] = {}  # (run, node) -> its last reply
        self.parents: dict[str, str] = {}  # tool call id -> the assistant message it is in

    def translate(self, event: Event) -> list[dict[str, Any]]:
        """The AG-UI events of an event that is not a plain text delta."""
        out: list[dict[str, Any]] = []
        run = event.run
        sub = None if run.run_id == self.root else run.run_id
        if event.node is not None:
            self._step(out, event, sub)
        if isinstance(event, AssistantReply | PlannerThought):
            if not event.internal:
                self._text(out, event, sub)
        elif isinstance(event, ToolStart):
            self._call(out, event.tool_call_id, event.tool_name, event.payload, sub)
        elif isinstance(event, ToolEnd):
            content = event.result if event.error is None else {"error": event.error.message}
            out.append(
                _owned(
                    {
                        "type": "TOOL_CALL_RESULT",
                        "messageId": f"result-{event.tool_call_id}",
                        "toolCallId": event.tool_call_id,
                        "content": content if isinstance(content, str) else _dumps(content),
                        "role": "tool",
                    },
                    sub,
                )
            )
        elif isinstance(event, ToolUpdate):
            value: dict[str, Any] = {"toolCallId": event.tool_call_id, "toolName": event.tool_name}
            for key, field in (("progress", event.progress), ("message", event.message)):
                if field is not None:
                    value[key] = field
            if event.data is not None:
                value["data"] = event.data
            out.append(_owned({"type": "CUSTOM", "name": "tool_update", "value": value}, sub))
        elif isinstance(event, StateUpdate):
            # The conversation goes out as message and tool call events; what
            # else a root node updated is shared state. A value is the node's
            # update as it returned it (a reducer's merge is not applied).
            delta = [
                {"op": "add", "path": f"/{_pointer(key)}", "value": value}
                for key, value in event.updates.items()
                if key != "messages"
            ]
            if sub is None and delta:
                out.append({"type": "STATE_DELTA", "delta": delta})
            self._turn(event)
            self._end_step(out, event, sub)
        elif isinstance(event, Custom):
            out.append(_owned({"type": "CUSTOM", "name": event.name, "value": event.data}, sub))
        elif isinstance(event, Usage):
            counts = self.usage.setdefault(event.model, [0, 0])
            counts[0] += event.input_tokens
            counts[1] += event.output_tokens
        elif isinstance(event, AgentRunStarted):
            self.links[event.child_run_id] = event
        elif isinstance(event, AwaitClarification):
            interrupt: dict[str, Any] = {
                "id": event.request_id,
                "reason": "clarification",
                "message": event.question,
            }
            call = event.tool_call
            if call is not None:  # approve this call: the client sees the call first
                interrupt["reason"] = "tool_approval"
                interrupt["toolCallId"] = call.tool_call_id
                self._call(out, call.tool_call_id, call.tool_name, call.payload, sub)
            if sub is not None:
                interrupt["subagentRunId"] = sub
            self.interrupts.append(interrupt)
        elif isinstance(event, AwaitExternalTools):
            for call in event.calls:
                self._call(out, call.tool_call_id, call.tool_name, call.payload, sub)
                self.pending.append(call.tool_call_id)
        elif isinstance(event, Workflow):
            self._workflow(out, event, sub)
        return out

    def _workflow(self, out: list[dict[str, Any]], event: Workflow, sub: str | None) -> None:
        phase = event.phase
        run = event.run
        if phase is Phase.STARTED:
            if not self.root:
                self.root = run.run_id
                self.run_id = self.run_id or run.run_id
                thread = self.thread_id or run.thread_id or run.run_id
                self.thread_id = thread
                out.append({"type": "RUN_STARTED", "threadId": thread, "runId": self.run_id})
                return
            started: dict[str, Any] = {
                "type": "SUBAGENT_STARTED",
                "subagentRunId": run.run_id,
                "name": run.agent,
            }
            link = self.links.get(run.run_id)
            if link is not None:
                started["parentToolCallId"] = link.tool_call_id
            if run.parent_run_id is not None and run.parent_run_id != self.root:
                started["parentSubagentRunId"] = run.parent_run_id
            out.append(started)
        elif phase.is_terminal:
            self._end_steps(out, run.run_id, sub)
            if sub is not None:
                out.append(_subagent_end(event, sub))
                return
            if phase is Phase.FAILED:
                error = event.error
                failed: dict[str, Any] = {
                    "type": "RUN_ERROR",
                    "message": error.message if error is not None else "the run failed",
                }
                if error is not None:
                    failed["code"] = error.type
                out.append(failed)
                return
            finished: dict[str, Any] = {
                "type": "RUN_FINISHED",
                "threadId": self.thread_id,
                "runId": self.run_id,
            }
            if phase is Phase.CANCELED:
                finished["outcome"] = {"type": "cancelled"}
            elif self.interrupts:
                finished["outcome"] = {"type": "interrupt", "interrupts": self.interrupts}
            elif self.pending:
                finished["outcome"] = {"type": "success", "pendingToolCallIds": self.pending}
            else:
                finished["outcome"] = {"type": "success"}
            if self.usage:
                finished["usage"] = [
                    {
                        "model": model,
                        "inputTokens": i,
                        "outputTokens": o,
                        "totalTokens": i + o,
                    }
                    for model, (i, o) in self.usage.items()
                ]
            out.append(finished)

    def _text(
        self, out: list[dict[str, Any]], event: AssistantReply | PlannerThought, sub: str | None
    ) -> None:
        mid = event.message_id
        reply = isinstance(event, AssistantReply)
        if mid not in self.open:
            self.open.add(mid)
            if reply:
                out.append(
                    _owned(
                        {"type": "TEXT_MESSAGE_START", "messageId": mid, "role": "assistant"}, sub
                    )
                )
            else:
                out.append(_owned({"type": "REASONING_START", "messageId": mid}, sub))
                out.append(
                    _owned(
                        {"type": "REASONING_MESSAGE_START", "messageId": mid, "role": "reasoning"},
                        sub,
                    )
                )
        if event.text:
            kind = "TEXT_MESSAGE_CONTENT" if reply else "REASONING_MESSAGE_CONTENT"
            out.append(_owned({"type": kind, "messageId": mid, "delta": event.text}, sub))
        if event.done:
            self.open.discard(mid)
            if reply:
                self.said[(event.run.run_id, event.node)] = mid
                out.append(_owned({"type": "TEXT_MESSAGE_END", "messageId": mid}, sub))
            else:
                out.append(_owned({"type": "REASONING_MESSAGE_END", "messageId": mid}, sub))
                out.append(_owned({"type": "REASONING_END", "messageId": mid}, sub))

    def _turn(self, event: StateUpdate) -> None:
        """Note which assistant message each tool call of a model turn belongs to.

        A node's update lists the assistant message it added with its tool
        calls; the text of that message is the reply the node just streamed.
        Each call's TOOL_CALL_START names it as `parentMessageId`, so that a
        client keeps one assistant message per turn (the AG-UI client makes a
        message per tool call otherwise, and sends them back as separate
        turns). A turn without text is named after its first call.
        """
        said = self.said.pop((event.run.run_id, event.node), None)
        messages = event.updates.get("messages")
        if not isinstance(messages, list):
            return
        for message in messages:
            if not isinstance(message, Mapping) or message.get("role") != "assistant":
                continue
            calls = message.get("tool_calls")
            if not isinstance(calls, list):
                continue
            ids = [
                c["tool_call_id"]
                for c in calls
                if isinstance(c, Mapping) and isinstance(c.get("tool_call_id"), str)
            ]
            for call_id in ids:
                self.parents[call_id] = said or ids[0]

    def _call(
        self, out: list[dict[str, Any]], call_id: str, name: str, payload: Any, sub: str | None
    ) -> None:
        if call_id in self.announced:
            return  # shown already, when its approval was asked for
        self.announced.add(call_id)
        start = {"type": "TOOL_CALL_START", "toolCallId": call_id, "toolCallName": name}
        parent = self.parents.pop(call_id, None)
        if parent is not None:
            start["parentMessageId"] = parent
        out.append(_owned(start, sub))
        out.append(
            _owned({"type": "TOOL_CALL_ARGS", "toolCallId": call_id, "delta": _dumps(payload)}, sub)
        )
        out.append(_owned({"type": "TOOL_CALL_END", "toolCallId": call_id}, sub))

    def _step(self, out: list[dict[str, Any]], event: Event, sub: str | None) -> None:
        """A node's first event in its run opens the node's step."""
        node = event.node
        assert node is not None
        key = (event.run.run_id, node)
        if key not in self.steps:
            self.steps[key] = node
            out.append(_owned({"type": "STEP_STARTED", "stepName": node}, sub))

    def _end_step(self, out: list[dict[str, Any]], event: Event, sub: str | None) -> None:
        """A node's `StateUpdate` (it returned) closes its step."""
        node = event.node
        if node is not None and self.steps.pop((event.run.run_id, node), None) is not None:
            out.append(_owned({"type": "STEP_FINISHED", "stepName": node}, sub))

    def _end_steps(self, out: list[dict[str, Any]], run_id: str, sub: str | None) -> None:
        """Steps a run leaves open (a node failed or was cancelled) close with it."""
        for key in [k for k in self.steps if k[0] == run_id]:
            node = self.steps.pop(key)
            out.append(_owned({"type": "STEP_FINISHED", "stepName": node}, sub))


def _owned(data: dict[str, Any], sub: str | None) -> dict[str, Any]:
    if sub is not None:
        data["subagentRunId"] = sub
    return data


def _subagent_end(event: Workflow, sub: str) -> dict[str, Any]:
    if event.phase is Phase.COMPLETED:
        return {"type": "SUBAGENT_FINISHED", "subagentRunId": sub, "outcome": {"type": "success"}}
    error = event.error
    ended: dict[str, Any] = {
        "type": "SUBAGENT_ERROR",
        "subagentRunId": sub,
        "message": error.message if error is not None else f"the run was {event.phase.value}",
        "code": error.type if error is not None else "Canceled",
    }
    return ended


def _pointer(key: str) -> str:
    """A JSON Pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")
