"""The runbook catalogue: YAML files read, validated with precise errors, and rendered.

Files come from ``OPSBOT_RUNBOOKS_DIR`` when it exists, else from the examples
shipped with the package. Every problem is reported as
``FILE:LINE: key.path: problem``, all of them at once. Parameter values and
instance ids may be Jinja2 templates, rendered in a sandbox from the incident
and its latest alert (``{{ alert.labels['dim.InstanceId'] }}``).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from opsbot.config import ConfigError
from opsbot.config.yamldoc import Document, KeyPath, keys, read_text
from opsbot.core import runbook_policy as rp
from opsbot.core.durations import parse_duration
from opsbot.runtime import Runtime

log = logging.getLogger(__name__)

TOP_KEYS = (
    "name", "title", "description", "kind", "document", "parameters", "targets",
    "max_concurrency", "max_errors", "environments", "approval", "timeout", "dangerous", "auto",
    "document_parameters",
)  # fmt: skip
PARAM_KEYS = (
    "type", "description", "default", "required", "pattern", "min", "max", "choices", "value",
)  # fmt: skip
TARGET_KEYS = ("instance_ids", "tags", "parameter", "max")
AUTO_KEYS = ("per_day", "prod")
MAX_TIMEOUT = 48 * 3600  # SendCommand TimeoutSeconds is at most 2,592,000; 48 h is plenty

_jinja = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@dataclass(frozen=True)
class Catalogue:
    """The runbooks by name, and where they came from."""

    runbooks: Mapping[str, rp.Runbook]
    source: str

    def get(self, name: str) -> rp.Runbook | None:
        """Return the runbook with this name, or None."""
        return self.runbooks.get(name)


def runbook_files(directory: Path | None) -> tuple[list[Path], str]:
    """Return the YAML files of the catalogue and a description of where they are."""
    if directory is not None and directory.is_dir():
        return sorted(directory.glob("*.yaml")), str(directory)
    bundled = resources.files("opsbot.bundled_runbooks")
    with resources.as_file(bundled) as path:
        return sorted(Path(path).glob("*.yaml")), "bundled examples"


def load_catalogue(directory: Path | None) -> Catalogue:
    """Load and validate every runbook; raise ConfigError with every problem found."""
    files, source = runbook_files(directory)
    errors: list[str] = []
    books: dict[str, rp.Runbook] = {}
    for path in files:
        try:
            book = parse_runbook(path.read_text(encoding="utf-8"), str(path))
        except ConfigError as exc:
            errors += exc.errors
            continue
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(f"{path}: cannot read: {exc}")
            continue
        if book.name in books:
            errors.append(
                f"{path}:1: name: {book.name!r} is also defined in {books[book.name].source}"
            )
        books[book.name] = book
    if errors:
        raise ConfigError(errors)
    return Catalogue(books, source)


@functools.lru_cache(maxsize=8)
def _cached(directory: Path) -> Catalogue:
    return load_catalogue(directory)


def catalogue_of(rt: Runtime) -> Catalogue:
    """Return the runbook catalogue of this process (read once; a restart reloads it)."""
    return _cached(rt.settings.runbooks_dir.resolve())


def parse_runbook(text: str, source: str) -> rp.Runbook:
    """Return the runbook a YAML text describes; raise ConfigError naming file, key and problem."""
    doc, data = read_text(text, source)
    if not isinstance(data, dict):
        raise ConfigError([f"{source}:1: expected a mapping of runbook keys"])
    book = _Reader(doc, source).runbook(data)
    if doc.found or book is None:
        raise ConfigError(doc.errors)
    return book


class _Reader:
    def __init__(self, doc: Document, source: str) -> None:
        self.doc = doc
        self.source = source

    def err(self, path: KeyPath, message: str) -> None:
        self.doc.error(path, message)

    def text(self, data: Mapping, key: str, default: str | None = None) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or (value == "" and default is None):
            self.err((key,), f"expected non-empty text, got {value!r}")
            return ""
        return value

    def runbook(self, data: dict[str, Any]) -> rp.Runbook | None:
        keys(self.doc, data, (), TOP_KEYS, ("name", "title", "kind", "document", "targets"))
        name = self.text(data, "name")
        if name and not rp.NAME.fullmatch(name):
            self.err(("name",), "use lower-case letters, digits and dashes (2-63 characters)")
        if name and Path(self.source).stem != name and Path(self.source).suffix == ".yaml":
            self.err(("name",), f"must match the file name {Path(self.source).stem!r}")
        kind = self.text(data, "kind")
        if kind and kind not in rp.KINDS:
            self.err(("kind",), f"{kind!r} is not one of {', '.join(rp.KINDS)}")
        params = self.parameters(data.get("parameters", {}))
        targets = self.targets(data.get("targets", {}), kind, {p.name for p in params})
        fields: dict[str, Any] = {
            "name": name,
            "title": self.text(data, "title"),
            "description": self.text(data, "description", ""),
            "kind": kind,
            "document": self.text(data, "document"),
            "parameters": params,
            "document_parameters": self.document_parameters(data.get("document_parameters", {})),
            **targets,
            "max_concurrency": self.rate(data, "max_concurrency", "1", rp.RATE),
            "max_errors": self.rate(data, "max_errors", "0", rp.ERROR_RATE),
            "environments": self.environments(data.get("environments", list(rp.ENVIRONMENTS))),
            "approval": self.approval(data.get("approval", {})),
            "timeout_seconds": self.timeout(data.get("timeout", "10m")),
            "dangerous": self.flag(data, ("dangerous",), False),
            **self.auto(data.get("auto", {})),
            "source": self.source,
        }
        return rp.Runbook(**fields)

    def flag(self, data: Mapping, path: KeyPath, default: bool) -> bool:
        value = data.get(path[-1], default)
        if not isinstance(value, bool):
            self.err(path, f"expected true or false, got {value!r}")
            return default
        return value

    def parameters(self, value: Any) -> tuple[rp.Param, ...]:
        if not isinstance(value, dict):
            self.err(("parameters",), "expected a mapping of parameter name to its definition")
            return ()
        return tuple(
            p for name, spec in value.items() if (p := self.parameter(name, spec)) is not None
        )

    def parameter(self, name: str, spec: Any) -> rp.Param | None:
        path: KeyPath = ("parameters", name)
        if not rp.PARAM_NAME.fullmatch(name):
            self.err(path, "a parameter name is letters, digits and underscores")
        if not isinstance(spec, dict):
            self.err(path, "expected a mapping with at least 'type'")
            return None
        keys(self.doc, spec, path, PARAM_KEYS, ("type",))
        kind = spec.get("type")
        if kind not in rp.PARAM_TYPES:
            self.err((*path, "type"), f"{kind!r} is not one of {', '.join(rp.PARAM_TYPES)}")
            return None
        fields: dict[str, Any] = {"name": name, "type": kind}
        fields["description"] = str(spec.get("description", ""))
        fields["required"] = self.flag(spec, (*path, "required"), True)
        fields["pattern"] = self.pattern(spec.get("pattern"), (*path, "pattern"))
        for key, attr in (("min", "minimum"), ("max", "maximum")):
            if key in spec:
                if kind != "int" or not isinstance(spec[key], int) or isinstance(spec[key], bool):
                    self.err((*path, key), "only an int parameter takes a whole-number bound")
                else:
                    fields[attr] = spec[key]
        choices = spec.get("choices", [])
        if kind == "choice" and (not isinstance(choices, list) or not choices):
            self.err((*path, "choices"), "a choice parameter needs a non-empty list of choices")
        fields["choices"] = tuple(str(c) for c in choices) if isinstance(choices, list) else ()
        value = spec.get("value")
        if value is not None and self.template(value, (*path, "value")):
            fields["value"] = value
        param = rp.Param(**fields)
        if "default" in spec:
            try:
                rp.coerce(param, spec["default"])
            except rp.ParamError as exc:
                self.err((*path, "default"), str(exc).split(": ", 1)[-1])
            fields["default"] = spec["default"]
        return rp.Param(**fields)

    def document_parameters(self, value: Any) -> dict[str, tuple[str, ...]]:
        path: KeyPath = ("document_parameters",)
        if not isinstance(value, dict):
            self.err(path, "expected a mapping of SSM parameter name to a template or a list")
            return {}
        out: dict[str, tuple[str, ...]] = {}
        for name, item in value.items():
            items = item if isinstance(item, list) else [item]
            if all(self.template(t, (*path, name)) for t in items):
                out[name] = tuple(items)
        return out

    def pattern(self, value: Any, path: KeyPath) -> str | None:
        if value is None:
            return None
        try:
            re.compile(str(value))
        except re.error as exc:
            self.err(path, f"not a regular expression: {exc}")
            return None
        return str(value)

    def template(self, value: Any, path: KeyPath) -> bool:
        if not isinstance(value, str):
            self.err(path, f"expected a text template, got {value!r}")
            return False
        try:
            _jinja.parse(value)
        except TemplateError as exc:
            self.err(path, f"not a valid template: {exc}")
            return False
        return True

    def targets(self, value: Any, kind: str, params: set[str]) -> dict[str, Any]:
        path: KeyPath = ("targets",)
        if not isinstance(value, dict):
            self.err(path, "expected a mapping with instance_ids, tags or parameter")
            return {}
        keys(self.doc, value, path, TARGET_KEYS, ())
        out: dict[str, Any] = {}
        ids = value.get("instance_ids", [])
        if not isinstance(ids, list) or not all(
            self.template(i, (*path, "instance_ids")) for i in ids
        ):
            self.err((*path, "instance_ids"), "expected a list of instance ids or templates")
        else:
            out["instance_ids"] = tuple(ids)
        tags = value.get("tags", {})
        if not isinstance(tags, dict) or not all(isinstance(v, list | str) for v in tags.values()):
            self.err((*path, "tags"), "expected a mapping of tag key to a value or list of values")
        else:
            out["target_tags"] = {
                k: tuple(v if isinstance(v, list) else [v]) for k, v in tags.items()
            }
        if "parameter" in value:
            if kind != "automation" or value["parameter"] not in params:
                self.err((*path, "parameter"), "must name one of the parameters of an automation")
            else:
                out["target_parameter"] = value["parameter"]
        if kind == "command" and not (out.get("instance_ids") or out.get("target_tags")):
            self.err(path, "a command needs instance_ids or tags")
        if kind == "automation" and "target_parameter" not in out and "parameter" not in value:
            self.err(path, "an automation needs 'parameter': the parameter that names its target")
        most = value.get("max", 1)
        if (
            not isinstance(most, int)
            or isinstance(most, bool)
            or not 1 <= most <= rp.MAX_TARGETS_LIMIT
        ):
            self.err((*path, "max"), f"expected a whole number from 1 to {rp.MAX_TARGETS_LIMIT}")
        else:
            out["max_targets"] = most
        return out

    def rate(self, data: Mapping, key: str, default: str, shape: re.Pattern[str]) -> str:
        value = str(data.get(key, default))
        if not shape.fullmatch(value):
            self.err((key,), f"{value!r} is not a count like 10 or a percentage like 25%")
            return default
        return value

    def environments(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            self.err(("environments",), "expected a non-empty list of environments")
            return rp.ENVIRONMENTS
        for i, env in enumerate(value):
            if env not in rp.ENVIRONMENTS:
                self.err(("environments", i), f"{env!r} is not one of {', '.join(rp.ENVIRONMENTS)}")
        return tuple(e for e in value if e in rp.ENVIRONMENTS)

    def approval(self, value: Any) -> dict[str, str]:
        result = dict(rp.DEFAULT_APPROVAL)
        if not isinstance(value, dict):
            self.err(("approval",), "expected a mapping of environment to none, one or other")
            return result
        for env, level in value.items():
            path: KeyPath = ("approval", env)
            if env not in rp.ENVIRONMENTS:
                self.err(path, f"{env!r} is not one of {', '.join(rp.ENVIRONMENTS)}")
            elif level not in rp.APPROVALS:
                self.err(path, f"{level!r} is not one of {', '.join(rp.APPROVALS)}")
            elif env == "prod" and level != "other":
                self.err(path, "prod always needs an approver who is not the requester (other)")
            else:
                result[env] = level
        return result

    def timeout(self, value: Any) -> int:
        try:
            seconds = int(parse_duration(value).total_seconds())
        except ValueError as exc:
            self.err(("timeout",), str(exc))
            return 600
        if not 30 <= seconds <= MAX_TIMEOUT:
            self.err(("timeout",), "must be from 30s to 48h")
            return 600
        return seconds

    def auto(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.err(("auto",), "expected a mapping with per_day and prod")
            return {}
        keys(self.doc, value, ("auto",), AUTO_KEYS, ())
        per_day = value.get("per_day", 3)
        if not isinstance(per_day, int) or isinstance(per_day, bool) or not 1 <= per_day <= 24:
            self.err(("auto", "per_day"), "expected a whole number from 1 to 24")
            per_day = 3
        return {"auto_per_day": per_day, "auto_prod": self.flag(value, ("auto", "prod"), False)}


class RenderError(ValueError):
    """A template could not be filled (a missing label, a bad expression)."""


def render(template: str, context: Mapping[str, Any]) -> str:
    """Return a template filled from the context in the sandbox; raise RenderError."""
    try:
        return _jinja.from_string(template).render(**context).strip()
    except TemplateError as exc:
        raise RenderError(f"cannot fill {template!r}: {exc}") from None


@dataclass(frozen=True)
class Rendered:
    """A run as it will be sent: checked parameters, SSM document parameters, instance ids."""

    parameters: dict[str, str]
    document_parameters: dict[str, list[str]]
    instance_ids: list[str]
    tags: dict[str, list[str]]


def render_request(
    book: rp.Runbook, given: Mapping[str, Any], context: Mapping[str, Any]
) -> Rendered:
    """Return a run's parameters and targets rendered and checked; raise RenderError/ParamError."""
    values: dict[str, Any] = {}
    for param in book.parameters:
        if param.name in given:
            values[param.name] = given[param.name]
        elif param.value is not None:
            values[param.name] = render(param.value, context)
    values |= {k: v for k, v in given.items() if k not in values}
    params = rp.check_parameters(book, values)
    scope = {**context, "params": params}
    if book.kind == "automation" and book.target_parameter:
        ids = [v for v in params.get(book.target_parameter, "").split(",") if v]
    else:
        ids = [render(t, scope) for t in book.instance_ids]
    if book.document_parameters:
        document = {k: [render(t, scope) for t in v] for k, v in book.document_parameters.items()}
    else:
        document = {k: [v] for k, v in params.items()}
    tags = {k: [render(t, scope) for t in v] for k, v in book.target_tags.items()}
    return Rendered(params, document, [i for i in ids if i], tags)
