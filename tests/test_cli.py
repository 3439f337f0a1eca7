"""The `runstream` command line, run in-process through `main` and as a subprocess."""

from __future__ import annotations

import gc
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import runstream
from runstream.cli import main
from runstream.codec import loads
from runstream.events import AssistantReply, Phase, ToolEnd, Workflow

SRC = Path(runstream.__file__).resolve().parent.parent

GRAPH_MODULE = """
from typing import TypedDict

import runstream as rs
from runstream.agents import create_agent
from runstream.models import ScriptedModel


class State(TypedDict, total=False):
    question: str
    answer: str


async def answer(state: State, ctx: rs.RunContext) -> dict[str, str]:
    async with ctx.tool("lookup", {"q": state.get("question", "")}) as call:
        call.result = {"hits": 2}
    async with ctx.stream_reply() as m:
        for word in ("Graphs ", "stream ", "events."):
            await m.write(word)
    return {"answer": "Graphs stream events."}


async def explode(state: State) -> None:
    raise ValueError("boom")


g = rs.StateGraph(State, name="tiny")
g.add_node("answer", answer)
g.add_edge(rs.START, "answer")
app = g.compile()

bad = rs.StateGraph(State, name="bad")
bad.add_node("explode", explode)
bad.add_edge(rs.START, "explode")
failing = bad.compile()


def make_app() -> rs.CompiledGraph:
    return app


agent = create_agent(ScriptedModel(["Hello back."]), name="greeter")

not_a_graph = 42


async def amain() -> None:
    async for event in app.run({}):
        print(event)
"""


@pytest.fixture
def graphs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of small graphs, importable as the returned name."""
    (tmp_path / "cli_graphs.py").write_text(GRAPH_MODULE)
    (tmp_path / "broken_import.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return "cli_graphs"


def test_demo_renders_the_whole_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--delay", "0"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err == ""
    # The answer streams in word-sized chunks, joined on one line.
    assert any(
        line.startswith("Yes, in most of the world.") and line.endswith("depends on the grid.")
        for line in lines
    )
    assert any(line.startswith("▸ web_search(") for line in lines)
    assert any(re.fullmatch(r"✓ web_search  \d+\.\d\ds  → .*", line) for line in lines)
    assert any(re.fullmatch(r"✓ fetch_stats  \d+\.\d\ds  → .*", line) for line in lines)
    assert any(re.fullmatch(r"✓ summarizer  \d+\.\d\ds", line) for line in lines)
    # The child agent's text is indented under the summarizer tool.
    assert any(line.startswith("  New solar farms") for line in lines)
    assert any(re.fullmatch(r"… web_search \d+% read \w+", line) for line in lines)
    # The usage summary: per model and in total.
    assert any(line.split()[:1] == ["scripted-large"] for line in lines)
    assert any(line.split()[:1] == ["scripted-small"] for line in lines)
    total = next(line.split() for line in lines if line.startswith("total "))
    assert total[-1] == "tokens)"
    assert int(total[1]) > 0
    assert int(total[3]) > 0
    assert lines[-1].split()[:3] == ["outcome", "✓", "completed"]


def test_a_profile_filters_what_is_shown_and_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "chat.jsonl"
    assert main(["demo", "--delay", "0", "--profile", "user_chat", "--jsonl", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert "The question is about current costs" not in out  # the planner's thought
    assert "▸ web_search()" in out  # tool calls without their arguments
    events = [loads(line) for line in path.read_bytes().splitlines()]
    assert not [e for e in events if isinstance(e, runstream.PlannerThought | runstream.Usage)]
    assert isinstance(events[-1], Workflow)


def test_demo_jsonl_records_every_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "demo.jsonl"
    assert main(["demo", "--delay", "0", "--jsonl", str(path)]) == 0
    events = [loads(line) for line in path.read_bytes().splitlines()]
    assert [e.seq for e in events] == list(range(len(events)))
    assert {e.tool_name for e in events if isinstance(e, ToolEnd)} == {
        "web_search",
        "fetch_stats",
        "summarizer",
    }
    assert len({e.run_id for e in events}) == 2  # the root run and the summarizer's
    last = events[-1]
    assert isinstance(last, Workflow)
    assert last.phase is Phase.COMPLETED


def test_run_renders_a_graph_from_a_module(graphs: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", f"{graphs}:app", "--input", '{"question": "why?"}']) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err == ""
    assert lines[0] == '▸ lookup(q="why?")'
    assert re.fullmatch(r'✓ lookup  \d+\.\d\ds  → \{"hits":2\}', lines[1])
    assert lines[2] == "Graphs stream events."
    assert re.fullmatch(r"✓ completed in \d+\.\d\ds", lines[3])


def test_run_calls_a_factory_and_passes_thread_id(
    graphs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    code = main(["run", f"{graphs}:make_app", "--thread-id", "t-7", "--jsonl", str(path)])
    assert code == 0
    assert "Graphs stream events." in capsys.readouterr().out
    events = [loads(line) for line in path.read_bytes().splitlines()]
    assert [e.seq for e in events] == list(range(len(events)))
    assert {e.thread_id for e in events} == {"t-7"}
    assert "".join(e.text for e in events if isinstance(e, AssistantReply)) == (
        "Graphs stream events."
    )


def test_run_passes_a_json_string_to_an_agent(
    graphs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", f"{graphs}:agent", "--input", '"hi there"']) == 0
    out = capsys.readouterr().out
    assert "Hello back." in out.splitlines()


def test_failed_run_renders_the_error_and_exits_1(
    graphs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", f"{graphs}:failing"]) == 1
    out, err = capsys.readouterr()
    assert "✗ failed: ValueError: boom" in out.splitlines()
    assert out.splitlines()[-1].split() == ["outcome", "✗", "failed:", "ValueError:", "boom"]
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "no_colon_here"],
            "expected MOD:ATTR (e.g. myproject.agents:app), got 'no_colon_here'",
        ),
        (["run", ":app"], "expected MOD:ATTR"),
        (["run", "cli_graphs:"], "expected MOD:ATTR"),
        (["run", "no_such_module_xyz:app"], "module not found: no_such_module_xyz"),
        (
            ["run", "broken_import:app"],
            "cannot import broken_import: No module named 'no_such_dependency_xyz'",
        ),
        (["run", "cli_graphs:missing"], "module cli_graphs has no attribute missing"),
        (
            ["run", "cli_graphs:not_a_graph"],
            "cli_graphs:not_a_graph is not a CompiledGraph (got int)",
        ),
        (["run", "cli_graphs:app", "--input", "{not json"], "--input is not JSON: "),
        (["run", "cli_graphs:agent", "--input", "[1, 2]"], "the graph does not take this input: "),
        (["demo", "--delay", "-1"], "--delay must be >= 0"),
        (
            ["run", "cli_graphs:amain"],
            "cli_graphs:amain is an async function, not a graph: pass a CompiledGraph or a "
            "function that returns one (graphs in cli_graphs: agent, app, failing)",
        ),
        (
            ["run", "cli_graphs.py:app"],
            "cli_graphs.py is a file path: MOD is a module name, try cli_graphs:app",
        ),
        (
            ["run", "./sub/cli_graphs.py:app"],
            "./sub/cli_graphs.py is a file path: MOD is a module name, try sub.cli_graphs:app",
        ),
    ],
)
def test_usage_errors_are_one_line_on_stderr_with_exit_2(
    graphs: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"runstream: error: {message}")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_an_async_function_is_refused_without_calling_it(
    graphs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["run", f"{graphs}:amain"]) == 2
        gc.collect()  # a coroutine created and dropped would warn here, at the latest
    assert [str(w.message) for w in caught] == []
    assert "is an async function" in capsys.readouterr().err


def test_unwritable_jsonl_is_a_usage_error(
    graphs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no" / "such" / "dir.jsonl"
    assert main(["run", "cli_graphs:app", "--jsonl", str(target)]) == 2
    assert capsys.readouterr().err.startswith(f"runstream: error: cannot write {target}")


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "run", "serve", "replay", "tail"):
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), command


@pytest.mark.parametrize(
    ("command", "expected"),
    [("demo", "--delay SECONDS"), ("run", "MOD:ATTR"), ("run", "--input JSON")],
)
def test_help_of_each_command(
    command: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: runstream {command}")
    assert expected in out
    assert "--jsonl FILE" in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: runstream" in capsys.readouterr().err


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "PYTHONIOENCODING": "utf-8"}


def test_python_dash_m_runstream_demo() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "runstream", "demo", "--delay", "0"],
        env=_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "✓ summarizer" in proc.stdout
    assert proc.stdout.splitlines()[-1].split()[:3] == ["outcome", "✓", "completed"]


SLOW_MODULE = """
import anyio
import runstream as rs


async def slow(state: dict, ctx: rs.RunContext) -> None:
    await ctx.reply("started")
    try:
        await anyio.sleep(60)
    finally:
        print("cleanup ran", flush=True)


g = rs.StateGraph(dict, name="slow")
g.add_node("slow", slow)
g.add_edge(rs.START, "slow")
app = g.compile()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery is POSIX")
def test_ctrl_c_cancels_the_run_and_exits_130(tmp_path: Path) -> None:
    (tmp_path / "slow_graph.py").write_text(SLOW_MODULE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runstream", "run", "slow_graph:app"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "started\n"
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "cleanup ran" in out
    assert "■ interrupted" in out
    assert err == "runstream: interrupted, run canceled\n"
