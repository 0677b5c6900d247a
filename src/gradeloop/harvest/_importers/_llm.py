"""The ``llm`` CLI's ``logs.db`` (simonw/llm): the ``responses`` table (with ``conversations``),
whose columns llm's ``migrations.py`` defines (m010_create_new_log_tables, m013_usage,
m019_resolved_model; prompt and system fragments from m015_fragments_tables).

Each response becomes a record: the system prompt (system fragments first), the earlier turns of
its conversation (prompt → user, response → assistant, in time order), then its own prompt
(prompt fragments first, joined by newlines as llm joins them) as input; ``response`` is the
output; ``resolved_model`` or ``model``, ``datetime_utc``, ``duration_ms``, ``input_tokens``,
``output_tokens`` and ``options_json`` (params) come along. The database is opened read-only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from .._record import Record
from ._common import Context, Skip, as_time

__all__ = ["has_responses", "is_sqlite", "llm_records"]

_MAGIC = b"SQLite format 3\x00"


def is_sqlite(head: bytes) -> bool:
    """Whether a file's first bytes are SQLite's header."""
    return head.startswith(_MAGIC)


def _fragments(db: sqlite3.Connection, table: str, response_id: str) -> list[str]:
    try:
        rows = db.execute(f'SELECT f.content FROM {table} x JOIN fragments f ON f.id = x.fragment_id'
                          f' WHERE x.response_id = ? ORDER BY x."order"', (response_id,)).fetchall()
    except sqlite3.OperationalError:  # a logs.db from before fragments (llm < 0.24)
        return []
    return [r[0] for r in rows if r[0]]


def _prompt(db: sqlite3.Connection, row: sqlite3.Row) -> str:
    parts = _fragments(db, "prompt_fragments", row["id"]) + ([row["prompt"]] if row["prompt"] else [])
    return "\n".join(parts)


def _system(db: sqlite3.Connection, row: sqlite3.Row) -> str:
    bits = [b for b in _fragments(db, "system_fragments", row["id"]) + [row["system"] or ""] if b]
    return "\n\n".join(bits)


def _options(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except (TypeError, json.JSONDecodeError):
        return {}
    return {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else {}


def _record(db: sqlite3.Connection, row: sqlite3.Row, earlier: list[sqlite3.Row]) -> Record:
    prompt = _prompt(db, row)
    if not prompt:
        raise Skip("no prompt text (an attachment- or tool-only prompt)")
    messages: list[dict[str, Any]] = []
    if _system(db, row):
        messages.append({"role": "system", "content": _system(db, row)})
    for turn in earlier:
        messages += [{"role": "user", "content": _prompt(db, turn)},
                     {"role": "assistant", "content": turn["response"] or ""}]
    messages.append({"role": "user", "content": prompt})
    keys = row.keys()
    record = Record(
        messages=messages, output={"role": "assistant", "content": row["response"] or ""},
        model=(row["resolved_model"] if "resolved_model" in keys else None) or row["model"],
        params=_options(row["options_json"]), latency_ms=row["duration_ms"],
        prompt_tokens=row["input_tokens"] if "input_tokens" in keys else None,
        completion_tokens=row["output_tokens"] if "output_tokens" in keys else None,
        metadata={k: v for k, v in (("llm_response_id", row["id"]), ("conversation_id", row["conversation_id"]),
                                    ("conversation_name", row["conversation_name"])) if v})
    when = as_time(row["datetime_utc"])
    if when is not None:
        record.created_at = when
    return record


def llm_records(ctx: Context) -> Iterator[tuple[str, Record]]:
    """``(origin, record)`` for every row of the ``responses`` table, oldest first."""
    db = sqlite3.connect(f"file:{ctx.path.resolve()}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    rows = db.execute("SELECT r.*, c.name AS conversation_name FROM responses r"
                      " LEFT JOIN conversations c ON c.id = r.conversation_id"
                      " ORDER BY r.datetime_utc, r.rowid").fetchall()
    history: dict[str, list[sqlite3.Row]] = {}
    try:
        for row in rows:
            earlier = history.setdefault(row["conversation_id"], []) if row["conversation_id"] else []
            content = json.dumps([row["system"], row["prompt"], row["response"]], ensure_ascii=False)
            try:
                record = _record(db, row, list(earlier))
            except Skip as exc:
                ctx.skip(f"responses/{row['id']}", str(exc))
            else:
                yield ctx.origin(f"responses/{row['id']}", content), record
            earlier.append(row)
    finally:
        db.close()


def has_responses(ctx: Context) -> bool:
    """Whether the SQLite file has llm's ``responses`` table."""
    try:
        db = sqlite3.connect(f"file:{ctx.path.resolve()}?mode=ro", uri=True)
        try:
            return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'responses'").fetchone() is not None
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return False
