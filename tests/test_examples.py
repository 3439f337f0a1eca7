"""Every example runs, and the README's example is examples/quickstart.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))


def run_example(path: Path) -> str:
    # No example may reach a real model server from the tests: openai_model.py
    # uses its loopback stand-in when OPENAI_BASE_URL is not set.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def test_there_are_examples() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"quickstart.py", "pattern_matching.py", "parallel_tools.py"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_runs(path: Path) -> None:
    assert run_example(path).strip()


def test_readme_example_is_the_quickstart() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Example.*?```python\n(.*?)```", readme, re.S)
    assert block is not None
    assert block.group(1) in (ROOT / "examples" / "quickstart.py").read_text()


def test_quickstart_prints_the_tool_then_the_streamed_reply() -> None:
    out = run_example(ROOT / "examples" / "quickstart.py")
    assert re.match(r"\[search took \d+\.\d ms\]\nRuns are streams of typed events\.\n$", out)


def test_pattern_matching_describes_each_event_in_seq_order() -> None:
    lines = run_example(ROOT / "examples" / "pattern_matching.py").splitlines()
    seqs = [int(line.split()[0]) for line in lines]
    assert seqs == sorted(seqs)
    text = "\n".join(lines)
    for needle in ("phase started", "tool lookup started", "tool lookup returned", "reply done"):
        assert needle in text
    assert lines[-1].endswith("phase completed")


def test_parallel_tools_start_both_before_either_ends() -> None:
    lines = run_example(ROOT / "examples" / "parallel_tools.py").splitlines()
    kinds = [line.split()[0] for line in lines if line.split()[:1] in (["start"], ["end"])]
    assert kinds[:2] == ["start", "start"]
    assert lines[-1] == "Downloaded 3 KiB and indexed 42 documents."


def test_the_openai_model_example_runs_a_tool_then_answers_on_its_stand_in() -> None:
    lines = run_example(ROOT / "examples" / "openai_model.py").splitlines()
    assert lines[0].startswith("(no OPENAI_BASE_URL: a stand-in server on 127.0.0.1:")
    assert lines[1:] == [
        "[stand-in: 60 tokens in, 12 out]",
        '[weather {"city": "Oslo"}]',
        "[-> sunny and 21 C in Oslo]",
        "It is sunny and 21 C in Oslo.",
        "[stand-in: 90 tokens in, 9 out]",
    ]
