"""Any JSONL log, read through ``--map FIELD=PATH`` (paths like ``conversation.turns``,
``answer.text``, ``choices[0].message``): enough to build a record from a custom log."""

from __future__ import annotations

from typing import Any

from ...errors import InputError, TemplateError
from ...templating import resolve
from .._record import Record, from_chat
from ._common import Context, LineFormat, Skip, as_time

__all__ = ["MAP_FIELDS", "MAPPED", "parse_maps"]

MAP_FIELDS = {
    "messages": "a list of {role, content} messages (the input conversation)",
    "system": "a string: the system message, put first",
    "user": "a string: the user's message, put last",
    "output": "a string or an assistant message: the answer",
    "model": "a string", "created_at": "epoch seconds/milliseconds or an ISO 8601 time",
    "latency_ms": "a number", "prompt_tokens": "an integer", "completion_tokens": "an integer",
    "status": "an HTTP status", "error": "a string or an object", "feedback": "a number, -1 (bad) … 1 (good)",
    "tags": "a string or a list of strings", "metadata": "an object (or any value, kept as metadata.value)",
}


def parse_maps(items: list[str]) -> dict[str, str]:
    """``["user=question", …]`` → ``{"user": "question"}``; raises InputError naming a bad one."""
    maps: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not path:
            raise InputError(f"'{item}': write FIELD=PATH, e.g. user=question.text", field="--map")
        if name not in MAP_FIELDS:
            raise InputError(f"unknown field '{name}' (one of: {', '.join(MAP_FIELDS)})", field="--map")
        maps[name] = path
    if maps and not ({"messages", "user"} & set(maps)):
        raise InputError("map 'messages' or 'user' (where the input is), e.g. --map user=question", field="--map")
    return maps


def _get(row: Any, path: str) -> Any:
    """The value at ``path`` in ``row``, or None when the row does not have it."""
    try:
        return resolve(f"item{path if path.startswith('[') else '.' + path}", {"item": row})
    except TemplateError:
        return None


def _messages(values: dict[str, Any]) -> list[dict[str, Any]]:
    messages = values.get("messages")
    if messages is not None and not (isinstance(messages, list)
                                     and all(isinstance(m, dict) and m.get("role") for m in messages)):
        raise Skip("messages: not a list of {role, content} messages")
    messages = list(messages or [])
    if isinstance(values.get("system"), str):
        messages.insert(0, {"role": "system", "content": values["system"]})
    if isinstance(values.get("user"), str):
        messages.append({"role": "user", "content": values["user"]})
    if not any(m.get("role") != "system" for m in messages):
        raise Skip("no input: the mapped messages/user are missing or empty")
    return messages


def _known(values: dict[str, Any]) -> dict[str, Any]:
    known: dict[str, Any] = {}
    for name in ("latency_ms", "feedback", "prompt_tokens", "completion_tokens", "status"):
        if isinstance(values.get(name), (int, float)) and not isinstance(values[name], bool):
            known[name] = int(values[name]) if name.endswith("tokens") or name == "status" else float(values[name])
    if as_time(values.get("created_at")) is not None:
        known["created_at"] = as_time(values["created_at"])
    if values.get("error") is not None:
        known["error"] = values["error"] if isinstance(values["error"], dict) else {"message": str(values["error"])}
    tags = values.get("tags")
    if tags is not None:
        known["tags"] = [str(t) for t in tags] if isinstance(tags, list) else [str(tags)]
    if values.get("metadata") is not None:
        meta = values["metadata"]
        known["metadata"] = meta if isinstance(meta, dict) else {"value": meta}
    return known


def _mapped(row: dict[str, Any], ctx: Context) -> Record:
    values = {name: _get(row, path) for name, path in ctx.maps.items()}
    output = values.get("output")
    if isinstance(output, str):
        output = {"role": "assistant", "content": output}
    elif output is not None and not (isinstance(output, dict) and output.get("role") == "assistant"):
        raise Skip("output: not a string or an assistant message")
    request = {"messages": _messages(values)}
    if isinstance(values.get("model"), str):
        request["model"] = values["model"]
    return from_chat(request, None, output=output, **_known(values))


MAPPED = LineFormat("map", "any JSONL, read through --map FIELD=PATH", lambda row: False, _mapped)
