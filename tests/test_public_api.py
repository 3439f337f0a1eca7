"""Every public name imports, is documented, and stays off optional transports."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import runstream

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = (ROOT / "docs" / "reference.md").read_text()
DOCUMENTED_MODULES = re.findall(r"^::: (\S+)", REFERENCE, re.M)

DESIGN_NAMES = {
    # events and codec
    "Event", "EVENT_TYPES", "AssistantReply", "PlannerThought", "ToolStart", "ToolUpdate",
    "ToolEnd", "Usage", "Workflow", "AgentRunStarted", "AwaitClarification",
    "AwaitExternalTools", "StateUpdate", "Custom", "Phase", "ErrorInfo", "ToolCall",
    "DecodeError", "EncodeError",
    # graphs and runs
    "StateGraph", "START", "END", "Command", "CompiledGraph", "RunContext", "RunStream",
    "RunFailed",
    # models and agents
    "ChatModel", "ModelChunk", "Message", "ScriptedModel", "Turn", "tool", "create_agent",
    "agent_tool",
    # runs beyond one process
    "Runtime", "RunRecord", "UnknownRun", "HistoryGone", "MemoryBus", "RedisBus", "NatsBus",
    "open_bus", "WorkerLost",
}  # fmt: skip


def test_the_design_names_are_exported() -> None:
    assert DESIGN_NAMES <= set(runstream.__all__)


@pytest.mark.parametrize("name", sorted(runstream.__all__))
def test_every_public_name_imports_and_is_documented(name: str) -> None:
    obj = getattr(runstream, name)
    homes = [
        module
        for module in DOCUMENTED_MODULES
        if name in getattr(importlib.import_module(module), "__all__", ())
    ]
    assert homes, f"{name} is in no module of docs/reference.md"
    if inspect.isclass(obj) or inspect.isfunction(obj):
        assert inspect.getdoc(obj), f"{name} has no docstring"


@pytest.mark.parametrize("module", DOCUMENTED_MODULES)
def test_documented_modules_declare_all_and_document_it(module: str) -> None:
    mod = importlib.import_module(module)
    assert inspect.getdoc(mod)
    for name in mod.__all__:
        obj = getattr(mod, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{module}.{name} has no docstring"


def test_import_runstream_imports_no_optional_transport() -> None:
    code = (
        "import sys, runstream; "
        "bad = [m for m in ('starlette', 'redis', 'nats', 'opentelemetry', 'websockets', "
        "'uvicorn', 'httpx') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_events_and_codec_import_nothing_else_of_the_package() -> None:
    for path, allowed in (("events.py", set()), ("codec.py", {"events"})):
        source = (ROOT / "src" / "runstream" / path).read_text()
        relative = set(re.findall(r"^\s*from \.(\w*) import", source, re.M))
        assert relative <= allowed, f"{path} imports {relative}"
