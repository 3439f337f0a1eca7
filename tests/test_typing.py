"""Static typing of events, operators and sinks, checked by running mypy --strict once.

Each file in `typing_cases/` marks the lines that must fail with
`# expect-error: <text>`; mypy must report exactly those lines, each with an
error containing <text>, and nothing else.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

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


@dataclass(frozen=True)
class Checked:
    """What one mypy run said about every case file."""

    code: int
    errors: dict[str, dict[int, list[str]]]  # file name -> line -> messages
    output: str


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """mypy --strict once over all the case files (one start-up, one cache)."""
    cache = tmp_path_factory.mktemp("mypy-cache")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            f"--cache-dir={cache}",
            # Judge only the case files, not modules being edited elsewhere in src/.
            "--follow-imports=silent",
            "--no-pretty",
            "--no-color-output",
            "--no-error-summary",
            "--show-error-codes",
            *(str(path) for path in sorted(CASES.glob("*.py"))),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    output = proc.stdout + proc.stderr
    errors: dict[str, dict[int, list[str]]] = {}
    for line in proc.stdout.splitlines():
        match = ERROR.match(line)
        if match:
            name = Path(match.group("path")).name
            assert (CASES / name).exists(), output
            errors.setdefault(name, {}).setdefault(int(match.group("line")), []).append(
                match.group("message")
            )
    assert proc.returncode in (0, 1), output  # 2: mypy itself failed
    return Checked(proc.returncode, errors, output)


def check_case(checked: Checked, name: str) -> dict[int, list[str]]:
    """Assert mypy reported exactly the lines `name` marks; return its errors."""
    errors = checked.errors.get(name, {})
    expected = expected_errors(CASES / name)
    assert sorted(errors) == sorted(expected), checked.output
    for line, text in expected.items():
        assert len(errors[line]) == 1, checked.output
        assert text in errors[line][0], checked.output
    return errors


def test_exhaustive_match_type_checks(checked: Checked) -> None:
    assert check_case(checked, "exhaustive.py") == {}


def test_match_missing_one_class_fails_assert_never(checked: Checked) -> None:
    errors = check_case(checked, "missing_one.py")
    [messages] = errors.values()
    assert "assert_never" in messages[0]
    assert '"Custom"' in messages[0]


def test_field_types(checked: Checked) -> None:
    errors = check_case(checked, "field_types.py")
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


def test_operators_keep_element_types(checked: Checked) -> None:
    # of_type narrows to the classes given (a union for several); others keep types.
    errors = check_case(checked, "ops_types.py")
    assert len(errors) == 9


def test_sinks_are_typed_by_the_items_they_take(checked: Checked) -> None:
    # attach, drain and with_policy take sinks of the stream's items.
    errors = check_case(checked, "sinks_types.py")
    # The contravariance lines: a Sink[ToolEnd] cannot take a stream of every event.
    assert sum("Cannot infer" in m[0] for m in errors.values()) == 3, checked.output


def test_every_case_file_is_checked(checked: Checked) -> None:
    # A case file with marked lines that no test looks at would prove nothing.
    named = {"exhaustive.py", "missing_one.py", "field_types.py", "ops_types.py", "sinks_types.py"}
    assert {path.name for path in CASES.glob("*.py")} == named
    assert checked.code == 1, checked.output
