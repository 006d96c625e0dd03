"""Read the Terraform modules with python-hcl2 (no Terraform binary runs here)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).parents[2]
TERRAFORM = ROOT / "deploy" / "terraform"
MODULES = {name: TERRAFORM / name for name in ("central", "member")}
EXAMPLES = {name: TERRAFORM / "examples" / name for name in MODULES}


def tf_files() -> list[Path]:
    """Return every .tf file below deploy/terraform."""
    return sorted(TERRAFORM.rglob("*.tf"))


def unquote(value: Any) -> Any:
    """Return a parsed value with HCL's string quotes removed from keys and strings."""
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@cache
def parse(path: Path) -> dict[str, Any]:
    """Return one .tf file, parsed and unquoted."""
    with path.open(encoding="utf-8") as handle:
        return unquote(hcl2.load(handle))  # type: ignore[no-any-return]


def blocks(directory: Path, kind: str) -> dict[str, Any]:
    """Return the blocks of one kind (variable, output, module, locals) of a directory by name."""
    found: dict[str, Any] = {}
    for path in sorted(directory.glob("*.tf")):
        for block in parse(path).get(kind, []):
            found |= block
    return found


def text(directory: Path, *, without: str = "") -> str:
    """Return the source of a directory's .tf files, optionally leaving one file out."""
    return "\n".join(p.read_text() for p in sorted(directory.glob("*.tf")) if p.name != without)


def typed(directory: Path, block: str, kind: str) -> dict[str, Any]:
    """Return the ``resource`` or ``data`` blocks of one type in a module, by their name."""
    found: dict[str, Any] = {}
    for path in sorted(directory.glob("*.tf")):
        for entry in parse(path).get(block, []):
            found |= entry.get(kind, {})
    return found


def resources(directory: Path, kind: str) -> dict[str, Any]:
    """Return the resources of one type in a module, by their name."""
    return typed(directory, "resource", kind)


def local(directory: Path, name: str) -> Any:
    """Return the value of one local of a module."""
    for path in sorted(directory.glob("*.tf")):
        for block in parse(path).get("locals", []):
            if name in block:
                return block[name]
    raise KeyError(f"no local {name} in {directory}")


def references(source: str, prefix: str) -> set[str]:
    """Return the names used as ``prefix.NAME`` in Terraform source (e.g. var.image)."""
    return set(re.findall(rf"\b{re.escape(prefix)}\.([A-Za-z_][A-Za-z0-9_-]*)", source))
