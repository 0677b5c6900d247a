"""OpenAI fine-tuning files as traffic: each row is a conversation someone thought worth
training on, validated with the same checks ``tune create`` makes (spec/_finetune.py).

- ``sft``: ``{"messages": [...], "tools"?}``: the last assistant message is the output, the
  messages before it the input.
- ``dpo``: ``{"input": {"messages", "tools"?}, "preferred_output": [msg],
  "non_preferred_output": [msg]}``: one record, the preferred message as output with feedback
  +1; the non-preferred message is kept in ``metadata.non_preferred_output`` (a second record
  would have the same input and fold into the first as a duplicate, losing it).
- ``rft``: ``{"messages": [...ending with the user's turn], …}``: no output; the other fields
  (what a grader reads, e.g. a reference answer) go to ``metadata``.

Fields a row has beyond OpenAI's go to ``metadata`` instead of failing the row (``model``, where
a row names one, is the record's model).
"""

from __future__ import annotations

from typing import Any

from ...spec._finetune import row_problem
from .._record import Record, from_chat
from ._common import Context, LineFormat, Skip

__all__ = ["DPO", "RFT", "SFT"]

_TOOL_KEYS = ("tools", "parallel_tool_calls", "functions")


def _check(row: dict[str, Any], keys: tuple[str, ...], method: Any) -> None:
    problem = row_problem({k: row[k] for k in keys if k in row}, method)
    if problem:
        where, message = problem
        raise Skip(f"{where}: {message}" if where else message)


def _messages(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in m.items() if k != "weight"} for m in row["messages"]]


def _sft(row: dict[str, Any], ctx: Context) -> Record:
    _check(row, ("messages", *_TOOL_KEYS), "supervised")
    messages = _messages(row)
    last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
    if last == 0:
        raise Skip("messages: no input before the assistant message")
    request = {"messages": messages[:last], **{k: row[k] for k in (*_TOOL_KEYS, "model") if k in row}}
    extra = {k: v for k, v in row.items() if k not in ("messages", "model", *_TOOL_KEYS)}
    return from_chat(request, None, output=messages[last], metadata=extra)


def _dpo(row: dict[str, Any], ctx: Context) -> Record:
    _check(row, ("input", "preferred_output", "non_preferred_output"), "dpo")
    prompt = row["input"]
    request = {"messages": prompt["messages"], **{k: prompt[k] for k in _TOOL_KEYS if k in prompt}}
    extra = {k: v for k, v in row.items() if k not in ("input", "preferred_output", "non_preferred_output")}
    metadata = {**extra, "non_preferred_output": row["non_preferred_output"][0]}
    return from_chat(request, None, output=row["preferred_output"][0], feedback=1.0, metadata=metadata)


def _rft(row: dict[str, Any], ctx: Context) -> Record:
    _check(row, ("messages",), "reinforcement")
    request = {"messages": row["messages"], **{k: row[k] for k in (*_TOOL_KEYS, "model") if k in row}}
    extra = {k: v for k, v in row.items() if k not in ("messages", "model", *_TOOL_KEYS)}
    return from_chat(request, None, metadata=extra)


def _last_role(row: dict[str, Any]) -> str | None:
    messages = row.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        return messages[-1].get("role")
    return None


SFT = LineFormat("sft", "OpenAI supervised fine-tuning rows ({\"messages\": […, assistant]})",
                 lambda row: _last_role(row) == "assistant" and "request" not in row
                 and row.get("object") is None, _sft)
DPO = LineFormat("dpo", "OpenAI DPO rows ({\"input\", \"preferred_output\", \"non_preferred_output\"})",
                 lambda row: "preferred_output" in row and "non_preferred_output" in row, _dpo)
RFT = LineFormat("rft", "OpenAI reinforcement fine-tuning rows ({\"messages\": […, user], …})",
                 lambda row: _last_role(row) == "user" and "request" not in row and row.get("object") is None, _rft)
