"""The ``llm`` CLI's ``logs.db`` (simonw/llm), both generations of its log tables, as llm's
``migrations.py`` defines them and its docs/logging.md ("SQL schema") lists them:

- ``turns`` (llm ≥ 0.32, m023_message_store): one row per model call; ``tip_message_hash``
  is the reply, and the chain of ``messages`` (``parent_hash`` links, ``role``) up to it is the
  input, each message's ``parts`` in ``position`` order (text from the ``text`` column, or the
  ``text_ref`` of fragments and literals in ``payload``; ``tool_call`` and ``tool_result`` parts
  become tool calls and tool messages; reasoning and attachments are left out).
- ``responses`` (with ``conversations``; llm ≤ 0.31, read-only history after): each response
  is a record whose input is the system prompt (system fragments first), the earlier responses
  of its conversation (prompt → user, response → assistant, in time order) and its own prompt
  (prompt fragments first, joined by newlines as llm joins them); a legacy row whose id is also
  a turn (llm's dual-write versions) is read once, as the turn.

``resolved_model`` or ``model``, ``datetime_utc``, ``duration_ms``, ``input_tokens``,
``output_tokens`` and ``options_json`` (params) come along. The database is opened read-only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from .._record import Record
from ._common import Context, Skip, as_time

__all__ = ["is_llm_logs", "is_sqlite", "llm_records"]

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


def _call_fields(row: sqlite3.Row) -> dict[str, Any]:
    """What a ``responses`` or ``turns`` row says about the call besides the messages."""
    keys = row.keys()
    fields: dict[str, Any] = {
        "model": (row["resolved_model"] if "resolved_model" in keys else None) or row["model"],
        "params": _options(row["options_json"]), "latency_ms": row["duration_ms"],
        "prompt_tokens": row["input_tokens"] if "input_tokens" in keys else None,
        "completion_tokens": row["output_tokens"] if "output_tokens" in keys else None}
    when = as_time(row["datetime_utc"])
    if when is not None:
        fields["created_at"] = when
    return fields


def _response_record(db: sqlite3.Connection, row: sqlite3.Row, earlier: list[sqlite3.Row]) -> Record:
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
    metadata = {k: v for k, v in (("llm_response_id", row["id"]), ("conversation_id", row["conversation_id"]),
                                  ("conversation_name", row["conversation_name"])) if v}
    return Record(messages=messages, output={"role": "assistant", "content": row["response"] or ""},
                  metadata=metadata, **_call_fields(row))


def _part_text(db: sqlite3.Connection, part: sqlite3.Row, payload: dict[str, Any]) -> str:
    """A text part's text: the ``text`` column, or its ``text_ref`` fragments and literals."""
    if part["text"] is not None:
        return part["text"]
    pieces = []
    for piece in payload.get("text_ref") or []:
        if "literal" in piece:
            pieces.append(piece["literal"])
        else:
            found = db.execute("SELECT content FROM fragments WHERE id = ?", (piece.get("fragment"),)).fetchone()
            pieces.append(found[0] if found else "")
    return "".join(pieces)


def _chat_messages(db: sqlite3.Connection, role: str, message_hash: str) -> list[dict[str, Any]]:
    """One stored message (its parts) → Chat Completions messages (tool results are tool messages)."""
    texts, calls, results = [], [], []
    for part in db.execute("SELECT * FROM parts WHERE message_hash = ? ORDER BY position", (message_hash,)):
        payload = json.loads(part["payload"]) if part["payload"] else {}
        if part["type"] == "text":
            texts.append(_part_text(db, part, payload))
        elif part["type"] == "tool_call":
            args = payload.get("arguments")
            calls.append({"id": payload.get("tool_call_id"), "type": "function", "function": {
                "name": payload.get("name"), "arguments": args if isinstance(args, str) else json.dumps(args or {})}})
        elif part["type"] == "tool_result":
            results.append({"role": "tool", "tool_call_id": payload.get("tool_call_id"),
                            "content": str(payload.get("output", ""))})
    if results:
        return results
    message: dict[str, Any] = {"role": role, "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _chain(db: sqlite3.Connection, tip: str | None) -> list[sqlite3.Row]:
    """The messages from the root of a conversation to ``tip``, oldest first."""
    rows, seen = [], set()
    while tip is not None and tip not in seen:
        seen.add(tip)
        row = db.execute("SELECT hash, parent_hash, role FROM messages WHERE hash = ?", (tip,)).fetchone()
        if row is None:
            raise Skip(f"message {tip} is not in the messages table")
        rows.append(row)
        tip = row["parent_hash"]
    return rows[::-1]


def _turn_record(db: sqlite3.Connection, row: sqlite3.Row) -> Record:
    chain = _chain(db, row["tip_message_hash"])
    if not chain or chain[-1]["role"] != "assistant":
        raise Skip("the turn has no assistant reply")
    messages = [m for r in chain[:-1] for m in _chat_messages(db, r["role"], r["hash"])]
    if not messages:
        raise Skip("the turn has no input messages")
    (output, *_) = _chat_messages(db, "assistant", chain[-1]["hash"])
    metadata = {k: v for k, v in (("llm_turn_id", row["id"]), ("thread_id", row["thread_id"]),
                                  ("thread_name", row["thread_name"])) if v}
    return Record(messages=messages, output=output, metadata=metadata, **_call_fields(row))


def _turn_records(db: sqlite3.Connection, ctx: Context) -> Iterator[tuple[str, Record]]:
    rows = db.execute("SELECT t.*, th.name AS thread_name FROM turns t LEFT JOIN threads th ON th.id = t.thread_id"
                      " ORDER BY t.datetime_utc, t.rowid").fetchall()
    for row in rows:
        content = json.dumps([row["parent_message_hash"], row["tip_message_hash"]])
        try:
            yield ctx.origin(f"turns/{row['id']}", content), _turn_record(db, row)
        except Skip as exc:
            ctx.skip(f"turns/{row['id']}", str(exc))


def _response_records(db: sqlite3.Connection, ctx: Context, skip_ids: set[str]) -> Iterator[tuple[str, Record]]:
    rows = db.execute("SELECT r.*, c.name AS conversation_name FROM responses r"
                      " LEFT JOIN conversations c ON c.id = r.conversation_id"
                      " ORDER BY r.datetime_utc, r.rowid").fetchall()
    history: dict[str, list[sqlite3.Row]] = {}
    for row in rows:
        earlier = history.setdefault(row["conversation_id"], []) if row["conversation_id"] else []
        if row["id"] not in skip_ids:  # a dual-write row: read as its turn
            content = json.dumps([row["system"], row["prompt"], row["response"]], ensure_ascii=False)
            try:
                yield ctx.origin(f"responses/{row['id']}", content), _response_record(db, row, list(earlier))
            except Skip as exc:
                ctx.skip(f"responses/{row['id']}", str(exc))
        earlier.append(row)


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def llm_records(ctx: Context) -> Iterator[tuple[str, Record]]:
    """``(origin, record)`` for every turn, then every legacy response, each oldest first."""
    db = sqlite3.connect(f"file:{ctx.path.resolve()}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        turn_ids: set[str] = set()
        if _has_table(db, "turns"):
            turn_ids = {r[0] for r in db.execute("SELECT id FROM turns")}
            yield from _turn_records(db, ctx)
        if _has_table(db, "responses"):
            yield from _response_records(db, ctx, turn_ids)
    finally:
        db.close()


def is_llm_logs(ctx: Context) -> bool:
    """Whether the SQLite file has llm's ``turns`` or ``responses`` table."""
    try:
        db = sqlite3.connect(f"file:{ctx.path.resolve()}?mode=ro", uri=True)
        try:
            return _has_table(db, "turns") or _has_table(db, "responses")
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return False
