"""The core imports nothing but the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).parents[1] / "opsbot" / "core"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_modules_import_only_stdlib_and_core() -> None:
    files = sorted(CORE.glob("*.py"))
    assert len(files) >= 6  # alert, lifecycle, effects, rules, accounts, silences, ...
    offenders = {}
    for path in files:
        bad = {
            name
            for name in imported_modules(path)
            if not name.startswith("opsbot.core")
            and name.split(".")[0] not in sys.stdlib_module_names
            and name != "__future__"
        }
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}
