"""Types users can lean on: ``mypy --strict`` accepts the package and a typed program, and flags misuse."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support import ROOT

EXPECTED = re.compile(r"#\s*expect:\s*([a-z-]+)")


def mypy(*targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *targets],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_the_package_and_a_typed_example_pass_mypy_strict():
    result = mypy("qtasks", "broker_daemon", "examples/typed.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_wrong_arguments_and_results_are_flagged():
    source = ROOT / "tests" / "typecheck" / "misuse.py"
    expected = {number: match.group(1) for number, line in enumerate(source.read_text().splitlines(), 1)
                if (match := EXPECTED.search(line))}
    result = mypy(str(source.relative_to(ROOT)))
    found = {int(m.group(1)): m.group(2)
             for m in re.finditer(r"misuse\.py:(\d+): error: .*\[([a-z-]+)\]$", result.stdout, re.M)}
    assert found == expected, result.stdout
