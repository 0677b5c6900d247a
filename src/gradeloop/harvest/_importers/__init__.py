"""Importers: files of real traffic into harvest records, each format read into the one
:class:`Record` shape and taken in through :func:`ingest` (redaction first).

Formats (``--format``): ``chat``, ``batch``, ``stored``, ``responses`` (OpenAI API traffic,
see _openai.py), ``sft``, ``dpo``, ``rft`` (fine-tuning files), ``llm`` (the llm CLI's
logs.db), ``otel`` (OTLP/JSON GenAI spans), ``map`` (any JSONL through ``--map``). Without
``--format`` the format is detected from the file; a file that could be read two ways is refused
with the candidates named.

Every record's origin is ``abs path:line (or row id):sha12(content)``: importing a file again
adds nothing, and lines appended to it since are the only ones taken.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import InputError
from ...store import Store
from .._ingest import IngestReport, ingest
from .._record import Record
from .._redact import Redactor
from ._common import Context, LineFormat, Skip, read_lines
from ._finetune import DPO, RFT, SFT
from ._llm import is_llm_logs, is_sqlite, llm_records
from ._mapped import MAP_FIELDS, MAPPED, parse_maps
from ._openai import BATCH, CHAT, RESPONSES, STORED, batch_requests
from ._otel import is_otlp, read_spans, span_position, span_record

__all__ = ["FORMATS", "MAP_FIELDS", "ImportResult", "detect_format", "import_file", "parse_maps"]

_LINE_FORMATS: dict[str, LineFormat] = {f.name: f for f in (CHAT, BATCH, STORED, RESPONSES, SFT, DPO, RFT, MAPPED)}
FORMATS: dict[str, str] = {
    **{name: f.description for name, f in _LINE_FORMATS.items() if name != "map"},
    "llm": "the llm CLI's logs.db (SQLite: its turns and responses tables)",
    "otel": "OpenTelemetry GenAI spans as OTLP/JSON (resourceSpans)",
    "map": MAPPED.description,
}
_SAMPLE = 50  # lines read to detect a JSONL format


@dataclass
class ImportResult:
    """One file's import: where from, as what, and the ingest report (skipped rows included,
    as ``(file:line, reason)``)."""

    file: str
    format: str
    source: str
    redacted: bool
    report: IngestReport = field(default_factory=IngestReport)

    def as_dict(self, limit: int = 1000) -> dict[str, Any]:
        """The JSON object ``--json`` prints (at most ``limit`` skipped rows listed)."""
        r = self.report
        return {"object": "harvest.import", "file": self.file, "format": self.format, "source": self.source,
                "redacted": self.redacted, "took": r.added + r.duplicates, "added": r.added,
                "duplicates": r.duplicates, "already_imported": r.seen, "skipped": len(r.skipped),
                "skipped_rows": [{"where": w, "reason": why} for w, why in r.skipped[:limit]],
                "record_ids": list(dict.fromkeys(r.record_ids))}


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(16)


def _line_candidates(path: Path) -> tuple[list[str], dict[str, int]]:
    """The JSONL formats the first lines look like, with the first line that shows each."""
    ctx = Context(path, str(path))
    first: dict[str, int] = {}
    for count, (number, _, row) in enumerate(read_lines(ctx)):
        if count >= _SAMPLE:
            break
        if is_otlp(row):
            first.setdefault("otel", number)
        elif isinstance(row, dict):
            for name, fmt in _LINE_FORMATS.items():
                if fmt.matches(row):
                    first.setdefault(name, number)
    return list(first), first


def detect_format(path: str | Path) -> str:
    """The format of the file at ``path``; raises InputError (exit 2) when it is none of the
    known ones, or could be read as more than one (naming them: pass ``--format``)."""
    path = Path(path)
    _exists(path)
    if path.stat().st_size == 0:
        raise InputError("the file is empty", file=str(path))
    if is_sqlite(_head(path)):
        if is_llm_logs(Context(path, str(path))):
            return "llm"
        raise InputError("an SQLite file without llm's 'turns' or 'responses' table: expected the llm CLI's logs.db",
                         file=str(path))
    names, first = _line_candidates(path)
    if not names and _whole_json_is_otlp(path):
        return "otel"
    if len(names) == 1:
        return names[0]
    if not names:
        raise InputError("not a format gradeloop can import: expected " + "; ".join(
            f"{n} ({d})" for n, d in FORMATS.items() if n != "map") + "; for another JSONL log pass --map FIELD=PATH",
            file=str(path))
    shown = ", ".join(f"{n} (line {first[n]})" for n in names)
    raise InputError(f"ambiguous: its lines read as {shown}; pass --format with one of them", file=str(path))


def _whole_json_is_otlp(path: Path) -> bool:
    try:
        return is_otlp(json.loads(path.read_text(encoding="utf-8", errors="replace")))
    except (json.JSONDecodeError, RecursionError):
        return False


def _exists(path: Path) -> None:
    if not path.exists():
        raise InputError("file not found", file=str(path))
    if not path.is_file():
        raise InputError("not a file", file=str(path))


def _line_entries(ctx: Context, fmt: LineFormat, tags: list[str]) -> Iterator[tuple[str, Record]]:
    for number, raw, row in read_lines(ctx):
        try:
            if not isinstance(row, dict):
                raise Skip("not a JSON object")
            record = fmt.convert(row, ctx)
        except Skip as exc:
            ctx.skip(str(number), str(exc))
            continue
        record.tags = [*record.tags, *tags]
        yield ctx.origin(str(number), raw), record


def _span_entries(ctx: Context, tags: list[str]) -> Iterator[tuple[str, Record]]:
    for line, span in read_spans(ctx):
        position, content = span_position(line, span)
        try:
            record = span_record(span)
        except Skip as exc:
            ctx.skip(position, str(exc))
            continue
        record.tags = [*record.tags, *tags]
        yield ctx.origin(position, content), record


def _llm_entries(ctx: Context, tags: list[str]) -> Iterator[tuple[str, Record]]:
    for origin, record in llm_records(ctx):
        record.tags = [*record.tags, *tags]
        yield origin, record


def _entries(ctx: Context, fmt: str, tags: list[str]) -> Iterator[tuple[str, Record]]:
    if fmt == "llm":
        return _llm_entries(ctx, tags)
    if fmt == "otel":
        return _span_entries(ctx, tags)
    return _line_entries(ctx, _LINE_FORMATS[fmt], tags)


def import_file(store: Store, path: str | Path, *, format: str | None = None, maps: dict[str, str] | None = None,
                tags: list[str] | tuple[str, ...] = (), redactor: Redactor | None,
                batch_input: str | Path | None = None) -> ImportResult:
    """Import the file at ``path`` into ``store`` (as ``format``, detected when None; ``maps``
    for ``map``; Batch API output joined with the ``batch_input`` file). ``redactor`` None
    stores texts unredacted. Bad rows are skipped and reported; raises InputError (exit 2)
    when the file is unreadable, of no known format, or when every row was skipped."""
    path = Path(path)
    _exists(path)
    maps = maps or {}
    fmt = format or ("map" if maps else detect_format(path))
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}' (one of: {', '.join(FORMATS)})", field="--format")
    if fmt == "map" and not maps:
        raise InputError("the map format needs --map FIELD=PATH (e.g. --map user=question --map output=answer)",
                         field="--map")
    if fmt == "llm" and not is_sqlite(_head(path)):
        raise InputError("not an SQLite file: --format llm expects the llm CLI's logs.db", file=str(path))
    ctx = Context(path, str(path), maps=maps)
    if batch_input is not None:
        _exists(Path(batch_input))
        ctx.batch_requests = batch_requests(read_lines(Context(Path(batch_input), str(batch_input))))
    source = f"import:{fmt}"
    try:
        report = ingest(store, _entries(ctx, fmt, list(tags)), source=source, redactor=redactor)
    except sqlite3.DatabaseError as exc:
        raise InputError(f"cannot read it as llm's logs.db: {exc}", file=str(path)) from None
    report.skipped = ctx.skipped + report.skipped
    if report.added + report.duplicates + report.seen == 0:
        raise InputError(_nothing_taken(fmt, report.skipped), file=str(path))
    return ImportResult(str(path), fmt, source, redactor is not None, report)


def _nothing_taken(fmt: str, skipped: list[tuple[str, str]]) -> str:
    if not skipped:
        return f"no rows to import (read as {fmt})"
    where, reason = skipped[0]
    return f"no row could be imported as {fmt}: all {len(skipped)} skipped; the first, {where}: {reason}"
