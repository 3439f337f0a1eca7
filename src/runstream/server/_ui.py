"""What AG-UI clients and the AI SDK's `useChat` post, as a runstream agent's input."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException

__all__ = ["ag_ui_input", "ai_sdk_input"]


def _bad(field: str, problem: str) -> HTTPException:
    return HTTPException(422, f"field '{field}': {problem}")


def _text(value: Any, field: str) -> str:
    """A message's content: a string, or the text of its parts."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for i, part in enumerate(value):
            if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                raise _bad(f"{field}[{i}]", "expected a content part with a 'type'")
            if part["type"] == "text":
                texts.append(str(part.get("text", "")))
        return "".join(texts)
    raise _bad(field, "expected a string or a list of content parts")


def _messages(body: Mapping[str, Any], kind: str) -> list[tuple[str, Mapping[str, Any]]]:
    """The body's `messages`, each with where it is (`messages[2]`), checked to be objects."""
    raw = body.get("messages")
    if not isinstance(raw, list):
        raise _bad("messages", f"required, a list of {kind}s")
    for i, message in enumerate(raw):
        if not isinstance(message, Mapping):
            raise _bad(f"messages[{i}]", f"expected a {kind} object")
    return [(f"messages[{i}]", message) for i, message in enumerate(raw)]


def _string(body: Mapping[str, Any], key: str, where: str = "") -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise _bad(f"{where}{key}", "required, a non-empty string")
    return value


def ag_ui_input(body: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """An AG-UI `RunAgentInput` as (agent input, thread id).

    Messages become the conversation (`developer` and `system` as system
    messages; `activity` and `reasoning` messages are left out); `context`
    entries become one system message; `tools` become the agent's
    `client_tools`. `state` and `forwardedProps` are not used.
    """
    thread_id = _string(body, "threadId")
    _string(body, "runId")
    messages: list[dict[str, Any]] = []
    for where, message in _messages(body, "message"):
        role = message.get("role")
        content = _text(message.get("content"), f"{where}.content")
        if role in ("user", "system", "developer"):
            messages.append({"role": "user" if role == "user" else "system", "content": content})
        elif role == "assistant":
            calls = []
            for j, call in enumerate(message.get("toolCalls") or ()):
                at = f"{where}.toolCalls[{j}]"
                function = call.get("function") if isinstance(call, Mapping) else None
                if not isinstance(function, Mapping):
                    raise _bad(f"{at}.function", "required, with 'name' and 'arguments'")
                calls.append(
                    {
                        "tool_call_id": _string(call, "id", f"{at}."),
                        "tool_name": _string(function, "name", f"{at}.function."),
                        "payload": _arguments(
                            function.get("arguments"), f"{at}.function.arguments"
                        ),
                    }
                )
            messages.append({"role": "assistant", "content": content, "tool_calls": calls})
        elif role == "tool":
            call_id = _string(message, "toolCallId", f"{where}.")
            error = message.get("error")
            text = f"Error: {error}" if isinstance(error, str) and error else content
            messages.append({"role": "tool", "content": text, "tool_call_id": call_id})
        elif role in ("activity", "reasoning"):
            continue
        else:
            raise _bad(
                f"{where}.role",
                f"unknown role {role!r}; roles: user, assistant, tool, system, developer",
            )
    context = body.get("context") or []
    if not isinstance(context, list):
        raise _bad("context", "expected a list of {description, value}")
    if context:
        lines = []
        for i, item in enumerate(context):
            if not isinstance(item, Mapping):
                raise _bad(f"context[{i}]", "expected {description, value}")
            lines.append(f"- {item.get('description', '')}: {item.get('value', '')}")
        messages.insert(0, {"role": "system", "content": "Context:\n" + "\n".join(lines)})
    agent_input: dict[str, Any] = {"messages": messages}
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise _bad("tools", "expected a list of tools")
    client_tools = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise _bad(f"tools[{i}]", "expected a tool object")
        client_tools.append(
            {
                "name": _string(tool, "name", f"tools[{i}]."),
                "description": str(tool.get("description") or ""),
                "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    if client_tools:
        agent_input["client_tools"] = client_tools
    return agent_input, thread_id


def _arguments(value: Any, field: str) -> Any:
    if not isinstance(value, str):
        raise _bad(field, "required, a JSON string")
    if not value.strip():
        return {}
    try:
        return json.loads(value)
    except ValueError:
        raise _bad(field, "not valid JSON") from None


def ai_sdk_input(body: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """What `useChat`'s `DefaultChatTransport` posts, as (agent input, chat id).

    UI messages become the conversation: a user message's text parts; an
    assistant message's steps as assistant messages with their tool calls,
    each followed by the results its tool parts carry. `regenerate-message`
    drops the last assistant message first.
    """
    chat_id = _string(body, "id")
    given = _messages(body, "UI message")
    if (
        body.get("trigger") == "regenerate-message"
        and given
        and given[-1][1].get("role") == "assistant"
    ):
        given = given[:-1]
    messages: list[dict[str, Any]] = []
    for where, message in given:
        role = message.get("role")
        parts = message.get("parts")
        if not isinstance(parts, list):
            raise _bad(f"{where}.parts", "required, a list of parts")
        if role in ("user", "system"):
            messages.append({"role": role, "content": _text(parts, f"{where}.parts")})
        elif role == "assistant":
            messages += _assistant(parts, f"{where}.parts")
        else:
            raise _bad(f"{where}.role", f"unknown role {role!r}; roles: user, assistant, system")
    return {"messages": messages}, chat_id


def _assistant(parts: list[Any], field: str) -> list[dict[str, Any]]:
    """One assistant UI message as model turns: text and tool calls, then their results."""
    out: list[dict[str, Any]] = []
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []

    def flush() -> None:
        if text or calls:
            out.append({"role": "assistant", "content": "".join(text), "tool_calls": list(calls)})
            out.extend(results)
        text.clear()
        calls.clear()
        results.clear()

    for i, part in enumerate(parts):
        if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
            raise _bad(f"{field}[{i}]", "expected a part with a 'type'")
        kind = part["type"]
        if kind == "text":
            if calls:
                flush()  # text after tool calls is the next turn
            text.append(str(part.get("text", "")))
        elif kind.startswith("tool-") or kind == "dynamic-tool":
            name = part.get("toolName") if kind == "dynamic-tool" else kind[len("tool-") :]
            call_id = _string(part, "toolCallId", f"{field}[{i}].")
            calls.append(
                {"tool_call_id": call_id, "tool_name": name, "payload": part.get("input") or {}}
            )
            state = part.get("state")
            if state == "output-available":
                output = part.get("output")
                content = output if isinstance(output, str) else json.dumps(output)
                results.append({"role": "tool", "content": content, "tool_call_id": call_id})
            elif state == "output-error":
                error = f"Error: {part.get('errorText', '')}"
                results.append({"role": "tool", "content": error, "tool_call_id": call_id})
    flush()
    return out
