"""Reading YAML, JSON and JSONL with line numbers, and turning validation errors into
:class:`~gradeloop.errors.InputError` that name file, line and field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import InputError

__all__ = ["Document", "read_document", "read_jsonl", "validate_model", "format_loc"]

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass
class Document:
    """A parsed YAML/JSON file: its data, its path, and the line of every key and list entry."""

    data: Any
    file: str
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc`` or of its nearest ancestor that has one."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), None)

    def error(self, message: str, loc: Loc = ()) -> InputError:
        """An InputError located at ``loc`` in this document."""
        return InputError(message, file=self.file, line=self.line(loc), field=format_loc(loc) or None)


def format_loc(loc: Loc) -> str:
    """``("a", 0, "b")`` → ``"a[0].b"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_map(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = loc + (key.value,)
            lines[child] = key.start_mark.line + 1
            _line_map(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            child = loc + (i,)
            lines[child] = value.start_mark.line + 1
            _line_map(value, child, lines)


def read_document(path: str | Path) -> Document:
    """Parse a YAML or JSON file; returns a Document with a line map.

    Raises InputError for a missing file or a syntax error, with the line of the error.
    """
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=name) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read file: {exc}", file=name) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=name, line=exc.lineno) from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            raise InputError(f"invalid YAML: {exc.problem or exc}", file=name, line=line) from None
        except yaml.YAMLError as exc:
            raise InputError(f"invalid YAML: {exc}", file=name) from None
    lines: dict[Loc, int] = {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _line_map(node, (), lines)
    except yaml.YAMLError:
        pass  # a JSON file YAML cannot parse: errors lose their line, not their field
    return Document(data=data, file=name, lines=lines)


def read_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)`` for every non-blank line of a JSONL file.

    Raises InputError naming the line of the first malformed row.
    """
    name = str(path)
    try:
        handle = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=name) from None
    except OSError as exc:
        raise InputError(f"cannot read file: {exc}", file=name) from None
    with handle:
        try:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    yield number, json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise InputError(_jsonl_problem(raw, exc), file=name, line=number) from None
        except UnicodeDecodeError as exc:
            raise InputError(f"file is not UTF-8 text: {exc.reason}", file=name) from None


def _jsonl_problem(raw: str, exc: json.JSONDecodeError) -> str:
    """What is wrong with one JSONL line, said so that a cut-off line reads as one."""
    if exc.pos >= len(raw.rstrip()) or exc.msg.startswith("Unterminated string"):
        return "invalid JSON: the line ends before its value does (a truncated line, or one value split over several lines)"
    return f"invalid JSON: {exc.msg} (column {exc.colno})"


def validate_model(cls: type[M], data: Any, doc: Document, loc: Loc = ()) -> M:
    """Validate ``data`` (found at ``loc`` in ``doc``) as ``cls``.

    Returns the model; raises InputError naming file, line and field of the first problem.
    """
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise doc.error(_describe(first), loc + _data_loc(first["loc"], data)) from None


def _data_loc(loc: tuple, data: Any) -> tuple:
    """Drop the union tags pydantic puts in ``loc`` (``completions``, ``function-after[…]``),
    keeping only the steps that exist in ``data``."""
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(part, str) and (
                "[" in part or part.startswith("function-") or (isinstance(node, dict) and node.get("type") == part)):
            continue
        else:
            node = None  # a missing or extra key: keep it and stop walking
        out.append(part)
    return tuple(out)


def _describe(error: dict) -> str:
    kind = error.get("type", "")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see the OpenAI field names)"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"must be one of {expected}, got {error.get('input')!r}"
    message = error.get("msg", "invalid value")
    return message.removeprefix("Value error, ")
