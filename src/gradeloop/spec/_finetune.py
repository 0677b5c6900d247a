"""Fine-tuning files exactly as OpenAI defines them, validated row by row.

- ``supervised``: ``{"messages": [...], "tools"?, "parallel_tool_calls"?, "functions"?}``;
  assistant messages may carry ``weight`` 0 or 1 (0: not trained on).
- ``dpo``: ``{"input": {"messages": [...], "tools"?, "parallel_tool_calls"?},
  "preferred_output": [assistant message], "non_preferred_output": [assistant message]}``.
- ``reinforcement``: ``{"messages": [...], "tools"?, …any other fields}``; the other fields are
  what the grader's ``{{ item.x }}`` reads; the last message is the user's turn to answer.

Every error names the file, the line and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from ..errors import InputError, TemplateError
from ..templating import resolve, variables
from ._load import read_jsonl

__all__ = ["load_training_file", "row_problem", "TRAINING_METHODS"]

TRAINING_METHODS = ("supervised", "dpo", "reinforcement")
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_SFT_KEYS = {"messages", "tools", "parallel_tool_calls", "functions"}
_DPO_KEYS = {"input", "preferred_output", "non_preferred_output"}


class _RowError(Exception):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _messages(value: Any, field: str, *, allow_weight: bool) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise _RowError("must be a non-empty list of messages", field)
    for i, m in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(m, dict):
            raise _RowError("a message must be an object with role and content", where)
        role = m.get("role")
        if role not in _ROLES:
            raise _RowError(f"role must be one of {', '.join(_ROLES)}, got {role!r}", f"{where}.role")
        content = m.get("content")
        if content is None:
            if role != "assistant" or not (m.get("tool_calls") or m.get("function_call")):
                raise _RowError("content is required (null only for an assistant message with tool_calls)",
                                f"{where}.content")
        elif not isinstance(content, (str, list)):
            raise _RowError("content must be a string or a list of parts", f"{where}.content")
        if "weight" in m:
            if not allow_weight or role != "assistant":
                raise _RowError("weight is only allowed on assistant messages of supervised files", f"{where}.weight")
            if m["weight"] not in (0, 1) or isinstance(m["weight"], bool):
                raise _RowError(f"weight must be 0 or 1, got {m['weight']!r}", f"{where}.weight")
    return value


def _sft(row: dict) -> None:
    extra = set(row) - _SFT_KEYS
    if extra:
        raise _RowError(f"unknown key(s) {sorted(extra)}; a supervised row has {sorted(_SFT_KEYS)}", sorted(extra)[0])
    messages = _messages(row.get("messages"), "messages", allow_weight=True)
    if not any(m.get("role") == "assistant" and m.get("weight", 1) == 1 for m in messages):
        raise _RowError("no assistant message to train on (at least one with weight 1 is needed)", "messages")


def _dpo(row: dict) -> None:
    extra = set(row) - _DPO_KEYS
    if extra:
        raise _RowError(f"unknown key(s) {sorted(extra)}; a dpo row has {sorted(_DPO_KEYS)}", sorted(extra)[0])
    prompt = row.get("input")
    if not isinstance(prompt, dict):
        raise _RowError('must be an object {"messages": [...]}', "input")
    _messages(prompt.get("messages"), "input.messages", allow_weight=False)
    for key in ("preferred_output", "non_preferred_output"):
        out = row.get(key)
        if not isinstance(out, list) or len(out) != 1:
            raise _RowError("must be a list with exactly one assistant message", key)
        _messages(out, key, allow_weight=False)
        if out[0].get("role") != "assistant":
            raise _RowError("must be an assistant message", f"{key}[0].role")
    if row["preferred_output"][0].get("content") == row["non_preferred_output"][0].get("content"):
        raise _RowError("the preferred and non-preferred outputs are identical: nothing to learn", "preferred_output")


def _rft(row: dict, grader_refs: list[str]) -> None:
    messages = _messages(row.get("messages"), "messages", allow_weight=False)
    if messages[-1].get("role") != "user":
        raise _RowError("the last message must be the user's (the model answers it)", f"messages[{len(messages) - 1}].role")
    for ref in grader_refs:
        try:
            resolve(ref, {"item": row})
        except TemplateError as exc:
            raise _RowError(f"{exc.message} (the grader reads it)", ref.removeprefix("item.")) from None


def _grader_item_refs(grader: dict | None) -> list[str]:
    refs: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            refs.extend(v.strip() for v in variables(value) if v.strip().startswith("item."))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(grader or {})
    return list(dict.fromkeys(refs))


def row_problem(row: Any, method: Literal["supervised", "dpo", "reinforcement"]) -> tuple[str, str] | None:
    """What is wrong with one row of a ``method`` fine-tuning file, as ``(field, message)``;
    None when the row is valid (the same checks :func:`load_training_file` makes)."""
    try:
        if not isinstance(row, dict):
            raise _RowError("each line must be a JSON object", "")
        {"supervised": _sft, "dpo": _dpo}.get(method, lambda r: _rft(r, []))(row)
    except _RowError as exc:
        return exc.field, str(exc)
    return None


def load_training_file(path: str | Path, method: Literal["supervised", "dpo", "reinforcement"], *,
                       grader: dict | None = None) -> list[dict[str, Any]]:
    """Read and validate a fine-tuning file for ``method``; returns its rows.

    For ``reinforcement``, every ``{{ item.x }}`` the ``grader`` reads must exist in every row.
    Raises InputError (file, line, field) at the first bad row; nothing is returned partially.
    """
    if method not in TRAINING_METHODS:
        raise InputError(f"unknown method '{method}' (use {', '.join(TRAINING_METHODS)})", field="method")
    refs = _grader_item_refs(grader) if method == "reinforcement" else []
    rows = []
    for line, row in read_jsonl(path):
        try:
            if not isinstance(row, dict):
                raise _RowError("each line must be a JSON object", "")
            if method == "supervised":
                _sft(row)
            elif method == "dpo":
                _dpo(row)
            else:
                _rft(row, refs)
        except _RowError as exc:
            raise InputError(str(exc), file=str(path), line=line, field=exc.field or None) from None
        rows.append(row)
    if not rows:
        raise InputError("the file has no rows", file=str(path))
    return rows
