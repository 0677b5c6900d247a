"""What every importer shares: reading a JSONL file line by line with each bad line reported
(not fatal), origins that make re-imports idempotent, and the line formats' registry."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...spec._load import _jsonl_problem
from .._record import Record

__all__ = ["Context", "LineFormat", "Skip", "as_time", "digest", "read_lines"]


class Skip(ValueError):
    """A row that cannot become a record; the message says why (it is reported, not fatal)."""


@dataclass
class Context:
    """What one import knows beyond a row: the file, ``--map`` paths, Batch API request bodies
    by ``custom_id`` (from ``--batch-input``), the rows skipped so far."""

    path: Path
    shown: str  # the path as the user wrote it, for messages
    maps: dict[str, str] = field(default_factory=dict)
    batch_requests: dict[str, dict[str, Any]] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.absolute = str(self.path.resolve())

    def origin(self, position: str, content: str) -> str:
        """``abs path:position:sha12(content)``: the same row of the same file is taken once."""
        return f"{self.absolute}:{position}:{digest(content)}"

    def skip(self, position: str, reason: str) -> None:
        """Report one row as skipped (``file:line``, why)."""
        self.skipped.append((f"{self.shown}:{position}", reason))


@dataclass(frozen=True)
class LineFormat:
    """A JSONL format: ``matches`` says whether a row looks like it (for detection), ``convert``
    turns a row into a record or raises :class:`Skip` saying why not."""

    name: str
    description: str
    matches: Callable[[dict[str, Any]], bool]
    convert: Callable[[dict[str, Any], Context], Record]


def digest(text: str) -> str:
    """The first 12 hex digits of the SHA-256 of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def read_lines(ctx: Context) -> Iterator[tuple[int, str, Any]]:
    """``(line number, raw line, value)`` for every non-blank line that is JSON; the others are
    reported as skipped."""
    with open(ctx.path, encoding="utf-8", errors="replace") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield number, raw.strip(), json.loads(raw)
            except json.JSONDecodeError as exc:
                ctx.skip(str(number), _jsonl_problem(raw, exc))


def as_time(value: Any) -> float | None:
    """Seconds since the epoch from a number (seconds, or milliseconds when that large) or an
    ISO 8601 string (UTC when it names no zone); None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) / 1000 if value > 1e11 else float(value)
    if isinstance(value, str) and value.strip():
        try:
            when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).timestamp()
    return None
