"""`runstream serve`, `tail` and `replay`: a real server in a subprocess, the rest in-process."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import runstream as rs
from runstream import cli
from runstream.cli import main
from runstream.codec import dumps

SRC = Path(rs.__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(20)

GRAPHS = """
import anyio
import runstream as rs


async def answer(state: dict, ctx: rs.RunContext) -> None:
    await ctx.reply("Graphs stream events.")


async def explode(state: dict) -> None:
    raise ValueError("boom")


async def wait(state: dict, ctx: rs.RunContext) -> None:
    await ctx.reply("waiting")
    await anyio.sleep(30)


def build(name, fn):
    g = rs.StateGraph(name=name)
    g.add_node("main", fn)
    g.add_edge(rs.START, "main")
    return g.compile()


tiny = build("tiny", answer)
graphs = {"tiny": tiny, "bad": build("bad", explode), "slow": build("slow", wait)}


def make_graphs():
    return graphs


not_graphs = {"tiny": tiny, "number": 42}
empty = {}
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "PYTHONIOENCODING": "utf-8"}


@pytest.fixture
def graphs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "net_graphs.py").write_text(GRAPHS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@contextmanager
def served(*args: str, cwd: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`runstream serve ARGS` in a subprocess; yields its base URL once it listens.

    Stopping it with SIGINT is the test's job; a server still running at the
    end is killed and fails the test.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "runstream", "serve", *args, "--port", "0"],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    pool = ThreadPoolExecutor(1)
    try:
        assert proc.stdout is not None
        line = pool.submit(proc.stdout.readline).result(timeout=10)
        found = re.fullmatch(r"runstream: serving (.+) at (\S+) \(Ctrl-C to stop\)\n", line)
        assert found is not None, (
            line,
            proc.stderr and proc.poll() is not None and proc.stderr.read(),
        )
        url = found[2]
        assert re.fullmatch(r"http://127\.0\.0\.1:[1-9][0-9]*", url), url
        assert httpx.get(f"{url}/graphs").status_code == 200  # listening already
        yield url, proc
        assert proc.poll() is not None, "the test did not stop the server"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        pool.shutdown(wait=False)


def stop(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C the server; assert a clean exit; return its stderr."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert err.endswith("runstream: server stopped\n")
    return err


def start(url: str, graph: str, graph_input: Any = None) -> str:
    response = httpx.post(f"{url}/runs", json={"graph": graph, "input": graph_input})
    assert response.status_code == 201, response.text
    events_url: str = response.json()["events_url"]
    return events_url


# --- serve and tail ---------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery is POSIX")
def test_serve_demo_then_tail_a_run_live(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with served("--demo", "--delay", "0.01") as (url, proc):
        assert httpx.get(f"{url}/graphs").json() == {"graphs": ["demo"]}
        events_url = start(url, "demo", "Is solar power now cheaper than coal?")
        assert main(["tail", events_url]) == 0
        out, err = capsys.readouterr()
        lines = out.splitlines()
        assert err == ""
        assert any(
            line.startswith("Yes, in most of the world.") and line.endswith("depends on the grid.")
            for line in lines
        )
        assert "The question is about current costs" in out
        assert any(re.fullmatch(r"✓ summarizer  \d+\.\d\ds", line) for line in lines)
        assert any(line.startswith("  New solar farms") for line in lines)
        assert lines[-1].split()[:3] == ["outcome", "✓", "completed"]

        # The same run again, through a profile and into a file.
        record = tmp_path / "chat.jsonl"
        assert main(["tail", events_url, "--profile", "user_chat", "--jsonl", str(record)]) == 0
        chat = [rs.codec.loads(line) for line in record.read_bytes().splitlines()]
        out = capsys.readouterr().out
        assert "The question is about current costs" not in out
        assert "▸ web_search()" in out
        assert not [e for e in chat if isinstance(e, rs.PlannerThought)]
        assert isinstance(chat[-1], rs.Workflow)
        assert chat[-1].phase is rs.Phase.COMPLETED

        unknown = events_url.replace("/runs/", "/runs/x")
        assert main(["tail", unknown]) == 2
        out, err = capsys.readouterr()
        assert err.startswith(f"runstream: error: {unknown}: HTTP 404: unknown run ")
        assert err.count("\n") == 1
        stop(proc)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery is POSIX")
def test_serve_a_mapping_and_tail_failed_and_canceled_runs(
    graphs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with served("net_graphs:graphs", cwd=graphs_dir) as (url, proc):
        assert httpx.get(f"{url}/graphs").json() == {"graphs": ["bad", "slow", "tiny"]}

        assert main(["tail", start(url, "tiny", {})]) == 0
        assert "Graphs stream events." in capsys.readouterr().out.splitlines()

        assert main(["tail", start(url, "bad", {})]) == 1
        out = capsys.readouterr().out
        assert "✗ failed: ValueError: boom" in out.splitlines()

        slow = start(url, "slow", {})
        run_url = slow.removesuffix("/events")
        assert httpx.post(f"{run_url}/cancel").status_code == 202
        assert main(["tail", slow]) == 1
        assert capsys.readouterr().out.splitlines()[-1].split()[:3] == [
            "outcome",
            "■",
            "canceled",
        ]
        stop(proc)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery is POSIX")
def test_tail_after_the_last_event_of_an_ended_run_shows_nothing(
    graphs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with served("net_graphs:graphs", cwd=graphs_dir) as (url, proc):
        for graph, status, code in (("tiny", "completed", 0), ("bad", "failed", 1)):
            events_url = start(url, graph, {})
            assert main(["tail", events_url]) == code
            capsys.readouterr()
            record = httpx.get(events_url.removesuffix("/events")).json()
            assert record["status"] == status
            last = record["events"] - 1
            for after in (last, last + 3):
                # At or past the end of an ended run: nothing to show, and the run's outcome.
                assert main(["tail", f"{events_url}?after={after}"]) == code
                out, err = capsys.readouterr()
                assert out == ""
                assert err == (
                    f"runstream: run {record['run_id']} has ended ({status}); "
                    f"no events after seq {after}\n"
                )
        stop(proc)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery is POSIX")
def test_serve_one_graph_by_its_name_and_a_factory(graphs_dir: Path) -> None:
    with served("net_graphs:tiny", cwd=graphs_dir) as (url, proc):
        assert httpx.get(f"{url}/graphs").json() == {"graphs": ["tiny"]}
        stop(proc)
    with served("net_graphs:make_graphs", cwd=graphs_dir) as (url, proc):
        assert httpx.get(f"{url}/graphs").json() == {"graphs": ["bad", "slow", "tiny"]}
        stop(proc)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery is POSIX")
def test_ctrl_c_cancels_the_runs_so_open_streams_end_and_the_server_stops(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with served("--demo", "--delay", "0.5") as (url, proc), ThreadPoolExecutor(1) as pool:
        events_url = start(url, "demo", "hi")
        following = pool.submit(main, ["tail", events_url])
        deadline = time.monotonic() + 5
        while httpx.get(events_url.removesuffix("/events")).json()["events"] < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        began = time.monotonic()
        err = stop(proc)
        assert time.monotonic() - began < 4  # not uvicorn's graceful-shutdown timeout
        assert following.result(timeout=10) == 1  # the run ended canceled
    assert "ERROR" not in err
    out, tail_err = capsys.readouterr()
    # Usually the tail sees the run end canceled; on a loaded machine the server
    # may be gone before that last frame reaches it, and the tail gives up: both
    # end with exit 1 and neither hangs.
    assert "canceled" in out or "gave up" in tail_err, (out, tail_err)


def test_a_port_in_use_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--demo", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.endswith(f"runstream: error: cannot serve on http://127.0.0.1:{port}\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve"], "serve needs MOD:ATTR or --demo (one of them)"),
        (["serve", "net_graphs:tiny", "--demo"], "serve needs MOD:ATTR or --demo"),
        (["serve", "--demo", "--port", "70000"], "--port must be between 0 and 65535, got 70000"),
        (["serve", "--demo", "--delay", "-1"], "--delay must be >= 0"),
        (["serve", "--demo", "--max-running", "0"], "--max-running must be at least 1, got 0"),
        (["serve", "nope"], "expected MOD:ATTR"),
        (["serve", "no_such_module_xyz:app"], "module not found: no_such_module_xyz"),
        (
            ["serve", "net_graphs:not_graphs"],
            "net_graphs:not_graphs['number'] is not a CompiledGraph (got int)",
        ),
        (["serve", "net_graphs:empty"], "net_graphs:empty is an empty mapping"),
        (
            ["serve", "net_graphs:build"],
            "calling net_graphs:build() failed: TypeError",
        ),
        (
            ["serve", "net_graphs:answer"],
            "net_graphs:answer is an async function, not a graph: pass a CompiledGraph or a "
            "function that returns one (graphs in net_graphs: tiny)",
        ),
        (
            ["serve", "net_graphs:GRAPHS_MISSING"],
            "module net_graphs has no attribute GRAPHS_MISSING",
        ),
        (["tail", "not a url"], "expected a run's events URL such as http://"),
        (["tail", "ftp://host/runs/a/events"], "expected a run's events URL"),
        (["tail", "http://host:1/runs/a"], "expected a run's events URL"),
        (["tail", "http://host:1/runs/a/ws"], "expected a run's events URL"),
        (["tail", "http://host:1/runs/a/events?after=x"], "after= in the URL must be an integer"),
        (
            ["tail", "http://host:1/runs/a/events?profile=chatty"],
            "profile= in the URL: unknown profile 'chatty'",
        ),
        (["tail", "http://[::1/runs/a/events"], "expected a run's events URL"),
        (["tail", "http://host:99999/runs/a/events"], "expected a run's events URL"),
        (["tail", "http://host:abc/runs/a/events"], "expected a run's events URL"),
        (["replay", "missing.jsonl"], "no such file: missing.jsonl"),
        (["replay", "."], "not a file: ."),
        (["replay", "net_graphs.py", "--speed", "-1"], "--speed must be 0 or a positive factor"),
        (["replay", "net_graphs.py", "--speed", "nan"], "--speed must be 0 or a positive factor"),
    ],
)
def test_usage_errors_are_one_line_on_stderr_with_exit_2(
    graphs_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"runstream: error: {message}"), err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_a_non_graph_target_is_named(graphs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (graphs_dir / "net_other.py").write_text("value = 42\n")
    assert main(["serve", "net_other:value"]) == 2
    assert capsys.readouterr().err == (
        "runstream: error: net_other:value is not a CompiledGraph or a mapping of names to "
        "graphs (got int); pass one, or a function that returns one\n"
    )


def test_an_unexpected_error_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: Any) -> int:
        raise RuntimeError("something broke\non two lines")

    monkeypatch.setattr(cli, "_cmd_demo", broken)
    assert main(["demo"]) == 1
    assert capsys.readouterr() == (
        "",
        "runstream: error: RuntimeError: something broke on two lines\n",
    )


# --- replay -----------------------------------------------------------------------


def test_replay_renders_a_recording_like_the_live_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "demo.jsonl"
    assert main(["demo", "--delay", "0", "--jsonl", str(path)]) == 0
    live = capsys.readouterr().out
    assert main(["replay", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == live  # durations come from the events, so even they agree
    assert any(line.startswith("Yes, in most of the world.") for line in out.splitlines())

    assert main(["replay", str(path), "--profile", "metrics", "-v"]) == 0
    out = capsys.readouterr().out
    assert "Yes, in most of the world." not in out
    assert "◦ usage scripted-large" in out


def recording(path: Path, gaps: list[float], *, outcome: rs.Phase = rs.Phase.COMPLETED) -> None:
    """A tiny recording: started, one reply per gap, then `outcome`, spaced by `gaps`."""
    run = rs.RunInfo(run_id="r", agent="tiny")
    ts = 1000.0
    events: list[rs.Event] = [rs.Workflow(run=run, seq=0, ts=ts, phase=rs.Phase.STARTED)]
    for i, gap in enumerate(gaps[:-1], start=1):
        ts += gap
        events.append(
            rs.AssistantReply(
                run=run, seq=i, ts=ts, text=f"line {i}", message_id=f"m{i}", done=True
            )
        )
    ts += gaps[-1]
    events.append(rs.Workflow(run=run, seq=len(gaps), ts=ts, phase=outcome))
    path.write_bytes(b"".join(dumps(e) + b"\n" for e in events))


def test_replay_speed_sleeps_by_the_recorded_gaps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tiny.jsonl"
    recording(path, [0.5, 1.0, 300.0, 0.0])
    pauses: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    assert main(["replay", str(path), "--speed", "2"]) == 0
    assert pauses == [0.25, 0.5, 2.0]  # the 150 s pause is capped; no pause for 0 s
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == ["line 1", "line 2", "line 3", "✓ completed in 301.50s"]

    pauses.clear()
    assert main(["replay", str(path)]) == 0  # --speed 0: no pauses at all
    assert pauses == []


def test_replay_speed_takes_real_time_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tiny.jsonl"
    recording(path, [0.2, 0.2, 0.2])
    began = time.monotonic()
    assert main(["replay", str(path), "--speed", "2"]) == 0
    assert time.monotonic() - began >= 0.29  # three pauses of 0.1 s
    assert capsys.readouterr().out.splitlines()[:3] == [
        "line 1",
        "line 2",
        "✓ completed in 0.60s",
    ]


def test_replay_exit_status_follows_the_recorded_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "canceled.jsonl"
    recording(path, [0.1, 0.1], outcome=rs.Phase.CANCELED)
    assert main(["replay", str(path)]) == 1
    # A recording cut short: rendered, then exit 1 ("run did not finish").
    path.write_bytes(b"\n".join(path.read_bytes().splitlines()[:2]) + b"\n")
    assert main(["replay", str(path)]) == 1
    assert capsys.readouterr().out.splitlines()[-1].split() == [
        "outcome",
        "run",
        "did",
        "not",
        "finish",
    ]


def test_replay_names_a_bad_line_and_an_empty_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    recording(path, [0.1, 0.1, 0.1])
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join([lines[0], b"", b'{"type": "mystery"}', *lines[1:]]))
    assert main(["replay", str(path)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"runstream: error: {path}:3: ")
    assert "mystery" in err
    assert err.count("\n") == 1
    assert "line 1" not in out  # the bad line comes before the first reply

    not_json = tmp_path / "notes.jsonl"
    not_json.write_text("hello\n")
    assert main(["replay", str(not_json)]) == 2
    assert capsys.readouterr().err.startswith(f"runstream: error: {not_json}:1: ")

    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    assert main(["replay", str(empty)]) == 2
    assert capsys.readouterr() == ("", f"runstream: error: {empty} holds no events\n")


# --- help -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("serve", ["MOD:ATTR", "--demo", "--host HOST", "--port PORT"]),
        ("tail", ["URL", "--token TOKEN", "--profile", "--jsonl FILE"]),
        ("replay", ["FILE.jsonl", "--speed X", "--profile", "--jsonl FILE"]),
    ],
)
def test_help_of_the_network_commands(
    command: str, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: runstream {command}")
    for text in expected:
        assert text in out
    assert "not available yet" not in out
