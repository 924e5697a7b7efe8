"""The package boundaries of DESIGN.md §1, checked on the source (static) and at runtime."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_AGENT = ("textual", "widgets", "themes", "mlintern_tui")
FORBIDDEN_IN_WIDGETS = ("litellm", "mlintern_tui")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violations(package: str, forbidden: tuple[str, ...], allowed_agent: tuple[str, ...] | None = None) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for mod in imported_modules(path):
            top = mod.split(".")[0]
            if top in forbidden:
                found.append(f"{path.relative_to(ROOT)} imports {mod}")
            if allowed_agent is not None and top == "agent" and mod not in allowed_agent:
                found.append(f"{path.relative_to(ROOT)} imports {mod} (widgets may only use agent.protocol)")
    return found


def test_agent_never_imports_ui_packages():
    assert violations("agent", FORBIDDEN_IN_AGENT) == []


def test_widgets_use_only_the_protocol_from_agent():
    assert violations("widgets", FORBIDDEN_IN_WIDGETS, allowed_agent=("agent", "agent.protocol")) == []


def test_rule_checker_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import textual.app\nfrom widgets import x\n")
    mods = imported_modules(bad)
    assert {"textual.app", "widgets"} <= mods


def test_importing_the_engine_loads_no_ui_module():
    code = (
        "import sys, agent.session, agent.loop, agent.tools, agent.context, agent.llm.client;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('textual','widgets','themes','mlintern_tui')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
