"""Static typing of the event hierarchy, checked by running mypy --strict.

Each file in `typing_cases/` marks the lines that must fail with
`# expect-error: <text>`; mypy must report exactly those lines, each with an
error containing <text>, and nothing else.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CASES = Path(__file__).resolve().parent / "typing_cases"
ROOT = CASES.parent.parent
MARKER = re.compile(r"#\s*expect-error:\s*(.+?)\s*$")
ERROR = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*)$")


def expected_errors(path: Path) -> dict[int, str]:
    found = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = MARKER.search(line)
        if match:
            found[number] = match.group(1)
    return found


def run_mypy(path: Path, cache: Path) -> tuple[int, dict[int, list[str]], str]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            f"--cache-dir={cache}",
            # Judge only the case file, not modules being edited elsewhere in src/.
            "--follow-imports=silent",
            "--no-pretty",
            "--no-color-output",
            "--no-error-summary",
            "--show-error-codes",
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    output = proc.stdout + proc.stderr
    errors: dict[int, list[str]] = {}
    for line in proc.stdout.splitlines():
        match = ERROR.match(line)
        if match:
            assert Path(match.group("path")).name == path.name, output
            errors.setdefault(int(match.group("line")), []).append(match.group("message"))
    return proc.returncode, errors, output


def check_case(name: str, tmp_path: Path) -> tuple[int, dict[int, list[str]]]:
    path = CASES / name
    code, errors, output = run_mypy(path, tmp_path / "mypy-cache")
    expected = expected_errors(path)
    assert sorted(errors) == sorted(expected), output
    for line, text in expected.items():
        assert len(errors[line]) == 1, output
        assert text in errors[line][0], output
    if expected:
        assert code == 1, output
    else:
        assert code == 0, output
    return code, errors


def test_exhaustive_match_type_checks(tmp_path: Path) -> None:
    code, errors = check_case("exhaustive.py", tmp_path)
    assert code == 0
    assert errors == {}


def test_match_missing_one_class_fails_assert_never(tmp_path: Path) -> None:
    code, errors = check_case("missing_one.py", tmp_path)
    assert code == 1
    [messages] = errors.values()
    assert "assert_never" in messages[0]
    assert '"Custom"' in messages[0]


def test_field_types(tmp_path: Path) -> None:
    code, errors = check_case("field_types.py", tmp_path)
    assert code == 1
    assert len(errors) == 7


def test_missing_one_lacks_only_the_custom_branch() -> None:
    # The two render() files must be the same match but for the Custom branch,
    # so the failure of missing_one.py can only come from that branch.
    full = (CASES / "exhaustive.py").read_text().splitlines()
    partial = (CASES / "missing_one.py").read_text().splitlines()
    cases_full = [line.strip() for line in full if line.strip().startswith("case ")]
    cases_partial = [line.strip() for line in partial if line.strip().startswith("case ")]
    missing = [line for line in cases_full if line not in cases_partial]
    assert missing == ["case rs.Custom(name=name, run_id=run_id):"]
    assert [line for line in cases_partial if line not in cases_full] == []


def test_operators_keep_element_types(tmp_path: Path) -> None:
    # of_type narrows to the classes given (a union for several); others keep types.
    code, errors = check_case("ops_types.py", tmp_path)
    assert code == 1
    assert len(errors) == 9
