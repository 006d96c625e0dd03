"""The line-aware YAML reader every section of the configuration is parsed with.

A YAML text is composed into a node tree and walked by hand, so every key and
list item keeps its line number. Every problem is reported as
``FILE:LINE: key.path[2].key: problem``, all of them at once in one
ConfigError. A ``Section`` (a mapping read from a document that still knows
the document) lets a parser of one part of the file report against the lines
of the whole file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from opsbot.core.durations import parse_duration

__all__ = [
    "ConfigError",
    "Document",
    "KeyPath",
    "Section",
    "choice",
    "describe",
    "document_for",
    "dotted",
    "duration",
    "flag",
    "keypath",
    "keys",
    "mapping",
    "moment",
    "read_file",
    "read_text",
    "split_problem",
    "syntax_error",
    "text",
]


class ConfigError(Exception):
    """The configuration is wrong; ``errors`` holds one precise message per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


KeyPath = tuple[str | int, ...]

PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
PATH_PART = re.compile(r"\.?([A-Za-z0-9_-]+)|\[(\d+)\]|\['([^']*)'\]")
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_NODES = 100_000  # an alias bomb is a configuration error, not an outage


def dotted(path: KeyPath) -> str:
    """Return a key path as text: ``rules[2].match.severity``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def keypath(text: str) -> KeyPath | None:
    """Return the key path a dotted text names (the inverse of dotted), or None."""
    parts: list[str | int] = []
    at = 0
    while at < len(text):
        found = PATH_PART.match(text, at)
        if found is None or (found.group(0).startswith(".") and not parts):
            return None
        name, index, quoted = found.groups()
        parts.append(int(index) if index is not None else name if name is not None else quoted)
        at = found.end()
    return tuple(parts) if parts else None


def split_problem(message: str) -> tuple[KeyPath, str]:
    """Return the key path a ``key.path: problem`` message starts with, and the problem."""
    head, sep, problem = message.partition(": ")
    path = keypath(head) if sep else None
    return (path, problem) if path is not None else ((), message)


class Document:
    """Plain values read from YAML nodes (or a mapping), with the line of every key and item."""

    def __init__(self, source: str, *, with_lines: bool = True) -> None:
        self.source = source
        self.with_lines = with_lines
        self.lines: dict[KeyPath, int] = {(): 1}
        self.raw: dict[KeyPath, str] = {}
        self.found: list[tuple[int, str]] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._open: set[int] = set()
        self._nodes = 0

    @property
    def errors(self) -> list[str]:
        """Return the problems found so far, in line order."""
        return [message for _, message in sorted(self.found, key=lambda item: item[0])]

    def error(self, path: KeyPath, message: str) -> None:
        """Record a problem at the line of the longest known prefix of ``path``."""
        where = f"{dotted(path)}: " if path else ""
        if not self.with_lines:
            prefix = f"{self.source}: " if self.source else ""
            self.found.append((0, f"{prefix}{where}{message}"))
            return
        line = next(
            self.lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in self.lines
        )
        self.found.append((line, f"{self.source}:{line}: {where}{message}"))

    def check(self) -> None:
        """Raise ConfigError listing every problem found, if there is any."""
        if self.found:
            raise ConfigError(self.errors)

    def fresh(self) -> Document:
        """Return a document with the same source and lines, and no problems yet."""
        doc = Document(self.source, with_lines=self.with_lines)
        doc.lines, doc.raw = self.lines, self.raw
        return doc

    def load(self, node: yaml.Node, path: KeyPath = ()) -> Any:
        """Return the plain value of a node, recording the line of every key and item."""
        self._nodes += 1
        if id(node) in self._open:
            self.error(path, "an alias refers to the value that contains it")
            return None
        if self._nodes > MAX_NODES:
            if self._nodes == MAX_NODES + 1:
                self.error(path, f"more than {MAX_NODES} values (aliases expand too far)")
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.load(item, self._at(path, i, item)) for i, item in enumerate(node.value)
                ]
            return self._scalar(node, path)
        finally:
            self._open.discard(id(node))

    def _at(self, path: KeyPath, key: str | int, node: yaml.Node) -> KeyPath:
        child = (*path, key)
        self.lines[child] = node.start_mark.line + 1
        return child

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != MERGE_TAG:
                if key_node.value in seen:
                    self.error(self._at(path, key_node.value, key_node), "duplicate key")
                seen.add(key_node.value)
        try:
            self._constructor.flatten_mapping(node)  # merged keys come first; later keys win
        except yaml.MarkedYAMLError as exc:
            self.error(path, exc.problem or "cannot merge this mapping")
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(self._at(path, "?", key_node), "a key must be plain text")
                continue
            child = self._at(path, key_node.value, key_node)
            result[key_node.value] = self.load(value_node, child)
        return result

    def _scalar(self, node: yaml.Node, path: KeyPath) -> Any:
        self.raw[path] = str(node.value)
        if node.tag == TIMESTAMP_TAG:
            return node.value
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.error(path, exc.problem or "cannot read this value")
            return None


class Section(dict[str, Any]):
    """A mapping read from a Document that keeps the document, so its parts report lines."""

    def __init__(self, data: Mapping[str, Any], doc: Document) -> None:
        super().__init__(data)
        self.doc = doc


def document_for(data: Mapping[str, Any], source: str = "") -> Document:
    """Return a fresh document with the lines of a Section, or one without lines for a mapping."""
    if isinstance(data, Section):
        return data.doc.fresh()
    return Document(source, with_lines=False)


def syntax_error(source: str, exc: yaml.YAMLError) -> str:
    """Return ``FILE:LINE:COLUMN: problem`` for a YAML syntax error."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if not isinstance(exc, yaml.MarkedYAMLError) or mark is None:
        return f"{source}: {exc}"
    message = f"{source}:{mark.line + 1}:{mark.column + 1}: {exc.problem or exc.context}"
    if exc.problem and exc.context:
        at = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message += f" ({exc.context}{at})"
    return message


def read_text(text: str, source: str) -> tuple[Document, Any]:
    """Return the document and plain data of a YAML text; raise ConfigError on a syntax error.

    Problems found while reading the values (duplicate keys, recursive
    aliases) are left in the document, to be reported with the rest.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([syntax_error(source, exc)]) from None
    doc = Document(source)
    return doc, doc.load(node) if node is not None else None


def read_file(path: Path) -> tuple[Document, Any]:
    """Return the document and plain data of a YAML file; raise ConfigError if unreadable."""
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    return read_text(content, str(path))


def describe(value: Any) -> str:
    """Return how a problem message names a value: ``a list``, ``the number 4``, ``'x'``."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"the number {value}"
    return repr(value)


def mapping(doc: Document, value: Any, path: KeyPath, what: str = "a mapping") -> dict | None:
    """Return the value if it is a mapping, else record a problem and return None."""
    if isinstance(value, dict):
        return value
    doc.error(path, f"expected {what}, got {describe(value)}")
    return None


def keys(
    doc: Document, data: Mapping, path: KeyPath, known: Collection[str], required: Collection[str]
) -> None:
    """Record every unknown key (with the closest known one) and every missing required key."""
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            doc.error((*path, key), f"unknown key; {hint}expected one of {', '.join(known)}")
    for key in required:
        if key not in data:
            doc.error(path, f"missing required key {key!r}")


def text(doc: Document, value: Any, path: KeyPath, what: str = "text") -> str | None:
    """Return the value as text (a number as written), else record a problem and return None."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return doc.raw.get(path, str(value))
    doc.error(path, f"expected {what}, got {describe(value)}")
    return None


def choice(doc: Document, value: Any, path: KeyPath, options: Collection[str]) -> str | None:
    """Return the value if it is one of the options, else record a problem and return None."""
    found = text(doc, value, path)
    if found is not None and found not in options:
        close = difflib.get_close_matches(found, options, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        doc.error(path, f"{found!r} is not one of {', '.join(options)}{hint}")
        return None
    return found


def flag(doc: Document, value: Any, path: KeyPath) -> bool | None:
    """Return the value if it is true or false, else record a problem and return None."""
    if isinstance(value, bool):
        return value
    doc.error(path, f"expected true or false, got {describe(value)}")
    return None


def duration(doc: Document, value: Any, path: KeyPath) -> timedelta | None:
    """Return the duration a text like 1h30m names, else record a problem and return None."""
    if not isinstance(value, str):
        doc.error(path, f"expected a duration like 24h, 90m or 1h30m, got {describe(value)}")
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        doc.error(path, str(exc))
        return None


def moment(doc: Document, value: Any, path: KeyPath) -> datetime | None:
    """Return the ISO 8601 date-time (UTC when it names no zone), else record a problem."""
    found = text(doc, value, path, "an ISO 8601 date-time")
    if found is None:
        return None
    try:
        when = datetime.fromisoformat(found)
    except ValueError:
        doc.error(path, f"{found!r} is not an ISO 8601 date-time like 2030-01-01T00:00:00Z")
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
