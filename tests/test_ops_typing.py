"""Static typing of the operators, checked by running mypy --strict.

`typing_cases/ops_types.py` marks the lines that must fail with
`# expect-error: <text>`; mypy must report exactly those lines, each with one
error containing <text>, and nothing else.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CASE = Path(__file__).resolve().parent / "typing_cases" / "ops_types.py"
ROOT = CASE.parent.parent.parent
MARKER = re.compile(r"#\s*expect-error:\s*(.+?)\s*$")
ERROR = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*)$")


def test_operators_keep_element_types(tmp_path: Path) -> None:
    expected = {
        number: match.group(1)
        for number, line in enumerate(CASE.read_text().splitlines(), start=1)
        if (match := MARKER.search(line))
    }
    assert len(expected) == 9
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            f"--cache-dir={tmp_path / 'mypy-cache'}",
            # Judge only the case file, not modules being edited elsewhere in src/.
            "--follow-imports=silent",
            "--no-pretty",
            "--no-color-output",
            "--no-error-summary",
            str(CASE),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )
    output = proc.stdout + proc.stderr
    errors: dict[int, list[str]] = {}
    for line in proc.stdout.splitlines():
        match = ERROR.match(line)
        if match:
            assert Path(match.group("path")).name == CASE.name, output
            errors.setdefault(int(match.group("line")), []).append(match.group("message"))
    assert sorted(errors) == sorted(expected), output
    for number, text in expected.items():
        assert len(errors[number]) == 1, output
        assert text in errors[number][0], output
    assert proc.returncode == 1, output
