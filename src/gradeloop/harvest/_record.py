"""A harvested exchange in one shape, whatever it came from: the Chat Completions messages that
were sent, the assistant message that came back, and what is known about the call.

Responses API traffic is read into the same shape (``instructions`` → a system message, input
items → messages, output items → one assistant message), so clustering, topics and eval
building never look at which API a record came through; the raw bodies are kept as well.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Record", "from_chat", "from_responses", "content_hash"]

# request fields that are not messages but say how the model was asked (kept as params)
_CHAT_PARAMS = ("temperature", "top_p", "seed", "max_tokens", "max_completion_tokens", "response_format", "tools",
                "tool_choice", "parallel_tool_calls", "stop", "reasoning_effort", "n", "frequency_penalty",
                "presence_penalty", "logit_bias", "user", "metadata", "stream")
_RESPONSES_PARAMS = ("temperature", "top_p", "max_output_tokens", "tools", "tool_choice", "parallel_tool_calls",
                     "reasoning", "text", "metadata", "stream", "user", "previous_response_id")


@dataclass
class Record:
    """One exchange: ``messages`` (Chat Completions form) in, ``output`` (an assistant message,
    or None when the call failed) out, with ``params`` (tools, response_format, sampling …)."""

    messages: list[dict[str, Any]]
    output: dict[str, Any] | None = None
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    api: str = "chat.completions"  # or "responses"
    status: int | None = None  # the HTTP status, when known
    error: dict[str, Any] | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None  # time to the first streamed chunk
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    created_at: float = field(default_factory=time.time)
    tags: list[str] = field(default_factory=list)
    feedback: float | None = None  # -1 (bad) … 1 (good), where the source says
    metadata: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] | None = None  # the raw bodies, as they were sent and received
    response: dict[str, Any] | None = None

    def row(self, source: str, *, redacted: bool) -> dict[str, Any]:
        """The record as the store's ``harvest_records`` columns."""
        return {"source": source, "api": self.api, "tags": sorted(set(self.tags)), "created_at": self.created_at,
                "model": self.model, "messages": self.messages, "output": self.output, "params": self.params,
                "request": self.request, "response": self.response, "status": self.status, "error": self.error,
                "latency_ms": self.latency_ms, "ttft_ms": self.ttft_ms, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "feedback": self.feedback, "metadata": self.metadata,
                "redacted": int(redacted), "content_hash": content_hash(self.messages)}


def content_hash(messages: list[dict[str, Any]]) -> str:
    """The identity of a conversation's input: roles, texts and tool calls (not ids or names of
    fields that only differ in form), so the same question asked twice hashes the same."""
    canon = [{"role": m.get("role"), "content": _text(m.get("content")), "tool_calls": _calls(m.get("tool_calls"))}
             for m in messages]
    data = json.dumps(canon, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ("" if content is None else json.dumps(content))


def _calls(calls: Any) -> list[Any]:
    if not isinstance(calls, list):
        return []
    return [[(c.get("function") or {}).get("name"), (c.get("function") or {}).get("arguments")]
            for c in calls if isinstance(c, dict)]


def _usage(response: dict[str, Any] | None) -> tuple[int | None, int | None]:
    usage = (response or {}).get("usage") or {}
    if not isinstance(usage, dict):
        return None, None
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    return (prompt if isinstance(prompt, int) else None), (completion if isinstance(completion, int) else None)


def from_chat(request: dict[str, Any], response: dict[str, Any] | None = None, **known: Any) -> Record:
    """A record from a Chat Completions request body and its response body (None when the call
    failed); ``known`` sets the other fields (status, latency_ms, tags …)."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        raise ValueError("the request has no 'messages' list")
    output = None
    if isinstance(response, dict) and isinstance(response.get("choices"), list) and response["choices"]:
        message = response["choices"][0].get("message") if isinstance(response["choices"][0], dict) else None
        output = message if isinstance(message, dict) else None
    prompt, completion = _usage(response)
    fields: dict[str, Any] = {
        "messages": messages, "output": output,
        "model": (response or {}).get("model") or request.get("model"),
        "params": {k: request[k] for k in _CHAT_PARAMS if k in request},
        "api": "chat.completions", "prompt_tokens": prompt, "completion_tokens": completion,
        "request": request, "response": response}
    if isinstance((response or {}).get("created"), (int, float)):
        fields["created_at"] = float(response["created"])
    return Record(**{**fields, **known})


def from_responses(request: dict[str, Any], response: dict[str, Any] | None = None, **known: Any) -> Record:
    """A record from a Responses API request body and its response body (None when it failed)."""
    messages: list[dict[str, Any]] = []
    if isinstance(request.get("instructions"), str):
        messages.append({"role": "system", "content": request["instructions"]})
    raw_input = request.get("input")
    if isinstance(raw_input, str):
        messages.append({"role": "user", "content": raw_input})
    elif isinstance(raw_input, list):
        messages += _items_to_messages(raw_input)
    else:
        raise ValueError("the request has no 'input' (a string or a list of items)")
    output = None
    if isinstance(response, dict) and isinstance(response.get("output"), list):
        replies = _items_to_messages(response["output"])
        output = _merge_assistant(replies) if replies else {"role": "assistant", "content": None}
    prompt, completion = _usage(response)
    fields: dict[str, Any] = {
        "messages": messages, "output": output,
        "model": (response or {}).get("model") or request.get("model"),
        "params": {k: request[k] for k in _RESPONSES_PARAMS if k in request},
        "api": "responses", "prompt_tokens": prompt, "completion_tokens": completion,
        "request": request, "response": response}
    if isinstance((response or {}).get("created_at"), (int, float)):
        fields["created_at"] = float(response["created_at"])
    return Record(**{**fields, **known})


def _items_to_messages(items: list[Any]) -> list[dict[str, Any]]:
    """Responses input/output items → Chat Completions messages (function calls become an
    assistant message's tool_calls, their outputs tool messages; other items are skipped)."""
    out: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message" and item.get("role"):
            role = item["role"]
            out.append({"role": role, "content": _text(item.get("content")) if isinstance(item.get("content"), list)
                        else item.get("content")})
        elif kind == "function_call":
            call = {"id": item.get("call_id") or item.get("id"), "type": "function",
                    "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}}
            if out and out[-1]["role"] == "assistant" and "tool_calls" in out[-1]:
                out[-1]["tool_calls"].append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            out.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": item.get("output")})
    return out


def _merge_assistant(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The assistant messages of one response as one message (texts joined, tool calls together)."""
    texts = [m["content"] for m in messages if isinstance(m.get("content"), str)]
    calls = [c for m in messages for c in m.get("tool_calls") or []]
    merged: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        merged["tool_calls"] = calls
    return merged
