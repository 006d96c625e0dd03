"""Hypothesis strategies for hostile input: awkward text, JSON of any shape, documented payloads
with their values replaced by those, and form and query strings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"
SAMPLES = [
    json.loads(path.read_text())
    for path in sorted(FIXTURES.glob("*.json"))
    if isinstance(json.loads(path.read_text()), dict)
]

# Characters that broke opsbot before: NUL, lone surrogates, superscripts, full-width digits,
# right-to-left marks, combining marks, astral characters; and plenty of ordinary ones.
AWKWARD = st.sampled_from(
    ["\x00", "\ud800", "\udfff", "²", "\uff11", "\u202e", "\u0301", "😀", "\n", "é", "%", "\\"]
)
CHARS = st.one_of(st.characters(codec=None, categories=None), AWKWARD)
TEXT = st.one_of(
    st.text(CHARS, max_size=40),
    st.text(CHARS, min_size=100, max_size=700),
    st.sampled_from(["", "0", "-1", str(2**63), str(2**64), "9" * 30, "²", "\uff11", "nan"]),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)
    ),
    max_leaves=12,
)


def deep(depth: int) -> str:
    """Return JSON text nested ``depth`` arrays deep."""
    return "[" * depth + "]" * depth


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """Return a copy of a JSON document with some of its values replaced by hostile ones."""
    if isinstance(base, dict):
        out = {}
        for key, value in base.items():
            choice = draw(st.integers(0, 9))
            if choice == 0:
                continue  # dropped
            out[key] = draw(JSON) if choice == 1 else draw(mutated(value))
        if draw(st.integers(0, 5)) == 0:
            out[draw(TEXT)] = draw(JSON)
        return out
    if isinstance(base, list):
        return [draw(mutated(item)) for item in base[:4]]
    return draw(JSON) if draw(st.integers(0, 3)) == 0 else base


@st.composite
def aws_messages(draw: st.DrawFn) -> str:
    """Return an SNS Message text: a documented event of some source, mutated, or any text."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.text(CHARS, max_size=300)).replace("\ud800", "?").replace("\udfff", "?")
    if kind == 1:
        return deep(draw(st.sampled_from([40, 5000, 100_000])))
    document = draw(mutated(draw(st.sampled_from(SAMPLES))))
    text = json.dumps(document)  # ensure_ascii: surrogates travel as "\ud800" escapes
    return json.dumps(text) if kind == 2 else text  # kind 2: JSON encoded twice
