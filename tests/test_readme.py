"""The README opens with the two fresh-machine commands, and CI runs the second verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text, flags=re.S)


def test_readme_starts_with_exactly_two_commands():
    text = (ROOT / "README.md").read_text()
    first_two = readme_commands()[:2]
    assert text.startswith("```sh\n" + first_two[0] + "\n```\n\n```sh\n" + first_two[1] + "\n```")
    install_and_start, install_and_test = first_two
    assert "pip install" in install_and_start and install_and_start.rstrip().endswith("mlintern")
    assert "pip install" in install_and_test and "pytest" in install_and_test


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()
