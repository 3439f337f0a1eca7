"""`attach`, `drain` and `with_policy` are typed by the items a sink takes (mypy --strict).

The case file is `tests/typing_cases/sinks_types.py`: each line ending in
`# expect-error: <text>` must fail with an error containing <text>, and no
other line may fail.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT / "tests" / "typing_cases" / "sinks_types.py"
MARKER = re.compile(r"#\s*expect-error:\s*(.+?)\s*$")
ERROR = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*)$")


def test_sinks_are_typed_by_the_items_they_take(tmp_path: Path) -> None:
    expected = {
        number: match.group(1)
        for number, line in enumerate(CASE.read_text().splitlines(), start=1)
        if (match := MARKER.search(line))
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            f"--cache-dir={tmp_path / 'mypy-cache'}",
            "--follow-imports=silent",
            "--no-pretty",
            "--no-color-output",
            "--no-error-summary",
            str(CASE),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    errors: dict[int, list[str]] = {}
    for line in proc.stdout.splitlines():
        if match := ERROR.match(line):
            assert Path(match.group("path")).name == CASE.name, output
            errors.setdefault(int(match.group("line")), []).append(match.group("message"))
    assert sorted(errors) == sorted(expected), output
    for number, text in expected.items():
        assert len(errors[number]) == 1, output
        assert text in errors[number][0], output
    # The contravariance lines: a Sink[ToolEnd] cannot take a stream of every event.
    assert sum("Cannot infer" in m[0] for m in errors.values()) == 3, output
    assert proc.returncode == 1, output
