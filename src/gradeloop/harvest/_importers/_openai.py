"""OpenAI API traffic as files: request/response logs, Batch API output (joined with its input
file), and exports of stored chat completions and Responses API objects.

Shapes, from openai-python's types (src/openai/types/…):

- ``chat``: ``{"request": <chat or Responses request body>, "response": <its response body>}``
  (``response`` may be null or a Batch-style ``{"status_code", "body"}``; optional ``status``,
  ``error``, ``latency_ms``, ``tags``, ``feedback``, ``metadata``).
- ``batch``: Batch API output lines ``{"id", "custom_id", "response": {"status_code",
  "request_id", "body"}, "error"}`` joined by ``custom_id`` with the input lines
  ``{"custom_id", "method", "url", "body"}`` of ``--batch-input``; an output line carries no
  request, so without its input line it is skipped (and so is an input line read as the file).
- ``stored``: a stored chat completion as ``client.chat.completions.list()`` yields it
  (``chat/chat_completion.py``: ``object: "chat.completion"``, ``metadata``) with its input
  messages under ``input_messages`` (or ``messages``): the items of
  ``client.chat.completions.messages.list(id)`` (``chat/chat_completion_store_message.py``:
  ``id``, ``role``, ``content``, ``content_parts``), a plain list or that list object.
- ``responses``: a Response (``responses/response.py``: ``object: "response"``, its
  ``instructions``, ``output``, ``usage``) with its input items under ``input_items`` (or
  ``input``): the items of ``client.responses.input_items.list(id)``
  (``responses/response_item_list.py``), a plain list or that list object.
"""

from __future__ import annotations

from typing import Any

from .._record import Record, from_chat, from_responses
from ._common import Context, LineFormat, Skip, as_time

__all__ = ["BATCH", "CHAT", "RESPONSES", "STORED", "batch_requests"]

_EXTRA = ("status", "latency_ms", "feedback")
# request settings that a stored object echoes (the API returns some of them on list items)
_CHAT_ECHO = ("temperature", "top_p", "seed", "tools", "tool_choice", "response_format", "max_tokens",
              "max_completion_tokens", "parallel_tool_calls", "reasoning_effort", "frequency_penalty",
              "presence_penalty", "metadata")
_RESPONSE_ECHO = ("model", "instructions", "tools", "tool_choice", "temperature", "top_p", "max_output_tokens",
                  "parallel_tool_calls", "reasoning", "text", "metadata", "previous_response_id")


def _from_request(request: Any, response: Any, **known: Any) -> Record:
    """A record from a request body of either API (``messages`` → chat, ``input`` → Responses)."""
    if not isinstance(request, dict):
        raise Skip("no request body (an object with 'messages' or 'input')")
    response = response if isinstance(response, dict) or response is None else None
    try:
        if "messages" in request:
            return from_chat(request, response, **known)
        return from_responses(request, response, **known)
    except ValueError as exc:
        raise Skip(f"request: {exc}") from None


def _unwrap(response: Any) -> tuple[Any, int | None]:
    """A Batch-style ``{"status_code", "body"}`` response → (body, status)."""
    if isinstance(response, dict) and "status_code" in response and "body" in response:
        return response["body"], response["status_code"] if isinstance(response["status_code"], int) else None
    return response, None


def _chat(row: dict[str, Any], ctx: Context) -> Record:
    response, status = _unwrap(row.get("response"))
    known: dict[str, Any] = {k: row[k] for k in _EXTRA if isinstance(row.get(k), (int, float))}
    if status is not None:
        known.setdefault("status", status)
    if isinstance(row.get("error"), dict):
        known["error"] = row["error"]
    if isinstance(row.get("tags"), list):
        known["tags"] = [str(t) for t in row["tags"]]
    if isinstance(row.get("metadata"), dict):
        known["metadata"] = row["metadata"]
    if as_time(row.get("created_at")) is not None:
        known["created_at"] = as_time(row["created_at"])
    return _from_request(row.get("request"), response, **known)


CHAT = LineFormat("chat", "OpenAI request/response log lines ({\"request\": …, \"response\": …})",
                  lambda row: isinstance(row.get("request"), dict) and "custom_id" not in row, _chat)


def _is_batch_input(row: dict[str, Any]) -> bool:
    return "custom_id" in row and isinstance(row.get("body"), dict)


def _is_batch_output(row: dict[str, Any]) -> bool:
    return "custom_id" in row and ("response" in row or "error" in row) and "body" not in row


def batch_requests(rows: Any) -> dict[str, dict[str, Any]]:
    """Batch API input lines (``(line, raw, value)`` triples) → request bodies by ``custom_id``."""
    return {str(row["custom_id"]): row for _, _, row in rows if isinstance(row, dict) and _is_batch_input(row)}


def _batch(row: dict[str, Any], ctx: Context) -> Record:
    if _is_batch_input(row):
        raise Skip("a Batch API input line has no response: import the output file with --batch-input "
                   f"{ctx.shown}")
    custom_id = str(row.get("custom_id"))
    line = (ctx.batch_requests or {}).get(custom_id)
    if line is None:
        hint = "not in the --batch-input file" if ctx.batch_requests is not None else "give the input file with --batch-input"
        raise Skip(f"no request body for custom_id {custom_id!r} ({hint})")
    body, status = _unwrap(row.get("response"))
    known: dict[str, Any] = {"metadata": {"custom_id": custom_id, "batch_request_id": row.get("id")}}
    if status is not None:
        known["status"] = status
    if isinstance(row.get("error"), dict):
        known["error"] = row["error"]
    elif isinstance(body, dict) and isinstance(body.get("error"), dict):
        known["error"] = body["error"]
    answered = isinstance(body, dict) and ("choices" in body or "output" in body)  # not an error body
    return _from_request(line["body"], body if answered else None, **known)


BATCH = LineFormat("batch", "OpenAI Batch API output lines (with --batch-input INPUT.jsonl)",
                   lambda row: _is_batch_input(row) or _is_batch_output(row), _batch)


def _listed(value: Any) -> list[Any] | None:
    """A plain list, or the ``data`` of an OpenAI list object."""
    if isinstance(value, dict) and value.get("object") == "list":
        value = value.get("data")
    return value if isinstance(value, list) else None


def _store_message(message: Any) -> dict[str, Any]:
    """A ChatCompletionStoreMessage → a request message (its ``id`` dropped; ``content_parts``
    used when ``content`` is null)."""
    if not isinstance(message, dict) or not message.get("role"):
        raise Skip("input_messages: each message needs a role")
    out = {k: v for k, v in message.items() if k not in ("id", "content_parts") and v is not None}
    if out.get("content") is None and message.get("content_parts"):
        out["content"] = message["content_parts"]
    out.setdefault("content", None)
    return out


def _stored(row: dict[str, Any], ctx: Context) -> Record:
    messages = _listed(row.get("input_messages", row.get("messages")))
    if not messages:
        raise Skip("a stored chat completion without its input messages ('input_messages': the items of "
                   "chat.completions.messages.list)")
    request = {"model": row.get("model"), "messages": [_store_message(m) for m in messages],
               **{k: row[k] for k in _CHAT_ECHO if row.get(k) is not None}}
    response = {k: v for k, v in row.items() if k not in ("input_messages", "messages")}
    known = {"metadata": row["metadata"]} if isinstance(row.get("metadata"), dict) else {}
    return _from_request(request, response, **known)


STORED = LineFormat("stored", "stored chat completions (chat.completion objects with input_messages)",
                    lambda row: row.get("object") == "chat.completion"
                    and ("input_messages" in row or "messages" in row), _stored)


def _responses(row: dict[str, Any], ctx: Context) -> Record:
    items = row.get("input_items", row.get("input"))
    items = items if isinstance(items, str) else _listed(items)
    if not items:
        raise Skip("a Response without its input ('input_items': the items of responses.input_items.list)")
    request = {**{k: row[k] for k in _RESPONSE_ECHO if row.get(k) is not None}, "input": items}
    response = {k: v for k, v in row.items() if k not in ("input_items", "input")}
    known: dict[str, Any] = {}
    if isinstance(row.get("error"), dict):
        known["error"] = row["error"]
    if row.get("status") in ("failed", "cancelled"):
        known["output"] = None
    if isinstance(row.get("metadata"), dict):
        known["metadata"] = row["metadata"]
    return _from_request(request, response, **known)


RESPONSES = LineFormat("responses", "Responses API objects with their input items (object: response)",
                       lambda row: row.get("object") == "response", _responses)
