"""Read the Dockerfile's stages: what the build stage copies and runs (shared by two tests)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def stages(text: str | None = None) -> list[list[tuple[str, str]]]:
    """Return the instructions of each stage, in order."""
    found: list[list[tuple[str, str]]] = []
    for word, rest in instructions(text if text is not None else DOCKERFILE.read_text()):
        if word == "FROM":
            found.append([])
        if found:
            found[-1].append((word, rest))
    return found


def build_context() -> list[str]:
    """Return the repository paths the build stage copies (its COPY sources)."""
    sources: list[str] = []
    for word, rest in stages()[0]:
        if word == "COPY":
            sources += rest.split()[:-1]
    return sources


def build_commands() -> str:
    """Return the build stage's RUN commands as one string."""
    return " && ".join(rest for word, rest in stages()[0] if word == "RUN")
