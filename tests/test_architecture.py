"""The package layout holds: no import circle, Flask only at the web edge, no private imports.

See shared LAYOUT.md: one package per domain, composition only in app.py,
worker.py, cli.py and server.py, and ``handlers/`` plus
``opsbot/slack/commands/`` pure (standard library, the core and themselves).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
COMPOSITION_ROOTS = {"opsbot.app", "opsbot.worker", "opsbot.cli", "opsbot.server"}
# Where the web framework may be imported: the web edge and the web composition root.
FLASK_ALLOWED = (
    "opsbot.web",
    "opsbot.intake",
    "opsbot.jira.webhook",
    "opsbot.slack.bolt",
    "opsbot.ui",
    "opsbot.sentry.webhook",
    "opsbot.housekeeping.reload",
)
FLASK_ALLOWED_MODULES = {"opsbot.app"}


@dataclass(frozen=True)
class Import:
    """One import statement of a module: what it names, and where it stands."""

    module: str  # the importing module
    target: str  # the imported module (a submodule when ``from pkg import submodule``)
    names: tuple[str, ...]
    in_function: bool
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> list[Path]:
    return sorted([*(ROOT / "opsbot").rglob("*.py"), *(ROOT / "handlers").rglob("*.py")])


MODULES = {module_name(p): p for p in source_files()}


def resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    inner = {id(n) for f in functions for n in ast.walk(f)}
    for node in ast.walk(tree):
        in_function = id(node) in inner
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, (), in_function, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = resolve(module, path, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if sub in MODULES else base
                yield Import(module, target, (alias.name,), in_function, node.lineno)


ALL_IMPORTS = [imp for name, path in MODULES.items() for imp in imports_of(name, path)]


def ours(target: str) -> bool:
    return target.split(".")[0] in {"opsbot", "handlers"}


def package_of(module: str) -> str:
    """Return the unit of the package graph: opsbot's subpackage, top module, or handlers."""
    parts = module.split(".")
    if parts[0] == "handlers":
        return "handlers"
    return ".".join(parts[:2])


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """Return one cycle of the directed graph as a path, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_find_cycle_finds_a_circle_and_only_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_package_graph_has_no_circle() -> None:
    edges: dict[str, set[str]] = {}
    for imp in ALL_IMPORTS:
        if ours(imp.target) and package_of(imp.module) != package_of(imp.target):
            edges.setdefault(package_of(imp.module), set()).add(package_of(imp.target))
    assert find_cycle(edges) is None


def test_the_module_graph_has_no_circle() -> None:
    edges: dict[str, set[str]] = {}
    for imp in ALL_IMPORTS:
        if ours(imp.target) and imp.target != imp.module:
            edges.setdefault(imp.module, set()).add(imp.target)
    assert find_cycle(edges) is None


def test_nothing_below_a_composition_root_imports_one() -> None:
    offenders = [
        f"{imp.module}:{imp.line} imports {imp.target}"
        for imp in ALL_IMPORTS
        if imp.target in COMPOSITION_ROOTS and imp.module not in COMPOSITION_ROOTS
    ]
    assert offenders == []


def test_no_function_imports_opsbot_or_handlers() -> None:
    """An import inside a function is how circles hide; opsbot's own modules import at the top."""
    offenders = [
        f"{imp.module}:{imp.line} imports {imp.target}"
        for imp in ALL_IMPORTS
        if imp.in_function and ours(imp.target)
    ]
    assert offenders == []


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = [
        f"{imp.module}:{imp.line} imports {imp.target}.{name}"
        for imp in ALL_IMPORTS
        for name in imp.names
        if ours(imp.target) and name.startswith("_") and imp.target != imp.module
    ]
    assert offenders == []


def test_flask_is_imported_only_at_the_web_edge() -> None:
    offenders = [
        f"{imp.module}:{imp.line}"
        for imp in ALL_IMPORTS
        if imp.target.split(".")[0] == "flask"
        and imp.module not in FLASK_ALLOWED_MODULES
        and not any(imp.module == a or imp.module.startswith(a + ".") for a in FLASK_ALLOWED)
    ]
    assert offenders == []


def test_runtime_imports_neither_flask_nor_a_domain() -> None:
    domains = {"sns", "intake", "incidents", "outbox", "jira", "slack", "runbooks", "web"}
    domains |= {"approvals", "aws"}
    targets = {imp.target for imp in ALL_IMPORTS if imp.module == "opsbot.runtime"}
    assert not any(t.split(".")[0] == "flask" for t in targets)
    assert not {t.split(".")[1] for t in targets if t.startswith("opsbot.")} & domains


PURE = {
    "handlers": ("handlers", "opsbot.core"),
    "opsbot.slack.commands": ("opsbot.slack.commands", "opsbot.core"),
    "opsbot.core": ("opsbot.core",),
}


@pytest.mark.parametrize("package", sorted(PURE))
def test_pure_packages_import_only_stdlib_the_core_and_themselves(package: str) -> None:
    allowed = PURE[package]
    modules = [m for m in MODULES if m == package or m.startswith(package + ".")]
    assert len(modules) >= 5
    offenders = [
        f"{imp.module}:{imp.line} imports {imp.target}"
        for imp in ALL_IMPORTS
        if imp.module in modules
        and imp.target.split(".")[0] not in sys.stdlib_module_names
        and imp.target != "__future__"
        and not any(imp.target == a or imp.target.startswith(a + ".") for a in allowed)
    ]
    assert offenders == []


def test_opsbot_has_no_flat_domain_modules_left() -> None:
    flat = {p.stem for p in (ROOT / "opsbot").glob("*.py")} - {"__init__"}
    expected = {"app", "worker", "cli", "server", "runtime", "jobs", "audit", "metrics"}
    assert flat - expected <= {"clicontext", "checks", "logs"}, flat - expected
