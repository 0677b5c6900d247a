"""OpenTelemetry GenAI spans in OTLP/JSON (``resourceSpans`` → ``scopeSpans`` → ``spans``):
one file holding one export request (pretty-printed or not), or JSONL with one per line (the
collector's file exporter).

Attributes read (OpenTelemetry's ``gen_ai.*`` semantic conventions):

- newer (semconv ≥ 1.37): ``gen_ai.system_instructions``, ``gen_ai.input.messages``,
  ``gen_ai.output.messages`` (JSON: ``[{"role", "parts": [{"type": "text", "content"},
  {"type": "tool_call", "id", "name", "arguments"}, {"type": "tool_call_response", "id",
  "response"}]}]``);
- older, flattened (OpenLLMetry, Langfuse): ``gen_ai.prompt.N.role`` / ``.content`` /
  ``.tool_calls.M.name|arguments|id`` / ``.tool_call_id``, ``gen_ai.completion.N.…``;
- OpenInference (Phoenix): ``llm.input_messages.N.message.role|content``,
  ``llm.output_messages.N.message.…``, ``llm.model_name``, ``llm.token_count.prompt|completion``;
- ``gen_ai.request.model`` / ``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` /
  ``output_tokens`` (or ``prompt_tokens`` / ``completion_tokens``), ``gen_ai.request.*``
  settings as params; start/end time → created_at and latency; status code 2 (ERROR) → error.

Spans that carry no messages (HTTP, retrieval, chain spans) are skipped and reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ...spec._load import _jsonl_problem
from .._record import Record
from ._common import Context, Skip, digest

__all__ = ["is_otlp", "read_spans", "span_record"]

_PARAMS = {"gen_ai.request.temperature": "temperature", "gen_ai.request.top_p": "top_p",
           "gen_ai.request.max_tokens": "max_tokens", "gen_ai.request.seed": "seed",
           "gen_ai.request.stop_sequences": "stop", "gen_ai.request.frequency_penalty": "frequency_penalty",
           "gen_ai.request.presence_penalty": "presence_penalty"}


def is_otlp(value: Any) -> bool:
    """Whether a JSON value is an OTLP/JSON traces export."""
    return isinstance(value, dict) and isinstance(value.get("resourceSpans"), list)


def _value(v: Any) -> Any:
    """An OTLP AnyValue (``{"stringValue": …}``, ``{"intValue": "3"}``, arrays, kvlists) → Python."""
    if not isinstance(v, dict):
        return v
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return [_value(x) for x in (v["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in v:
        return _attributes((v["kvlistValue"] or {}).get("values", []))
    return None


def _attributes(items: Any) -> dict[str, Any]:
    return {a["key"]: _value(a.get("value")) for a in items or [] if isinstance(a, dict) and "key" in a}


def _documents(ctx: Context) -> Iterator[tuple[str, Any]]:
    """``(line, export request)``: the whole file when it is one JSON value, else each line."""
    text = ctx.path.read_text(encoding="utf-8", errors="replace")
    try:
        yield "1", json.loads(text)
        return
    except json.JSONDecodeError:
        pass
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            try:
                yield str(number), json.loads(raw)
            except json.JSONDecodeError as exc:
                ctx.skip(str(number), _jsonl_problem(raw, exc))


def read_spans(ctx: Context) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(line, span)`` for every span of every export request in the file."""
    for line, doc in _documents(ctx):
        if not is_otlp(doc):
            ctx.skip(line, "not an OTLP/JSON traces export (no resourceSpans)")
            continue
        for resource in doc["resourceSpans"]:
            for scope in (resource or {}).get("scopeSpans") or (resource or {}).get("instrumentationLibrarySpans") or []:
                for span in (scope or {}).get("spans") or []:
                    if isinstance(span, dict):
                        yield line, span


def _indexed(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Flattened ``prefix.N.field`` attributes → a list of dicts (``prefix.N.a.M.b`` nests)."""
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix + "."):
            continue
        index, _, rest = key[len(prefix) + 1:].partition(".")
        if index.isdigit() and rest:
            groups.setdefault(int(index), {})[rest] = value
    out = []
    for index in sorted(groups):
        # OpenInference nests each message's fields under "message."
        flat = {k.removeprefix("message."): v for k, v in groups[index].items()}
        item = {k: v for k, v in flat.items() if not k.startswith("tool_calls.")}
        calls = _indexed(flat, "tool_calls")
        if calls:
            item["tool_calls"] = calls
        out.append(item)
    return out


def _flat_content(content: Any) -> Any:
    """OpenLLMetry writes list content (text and image parts) as a JSON string: read it back."""
    if isinstance(content, str) and content.startswith("[{"):
        try:
            parts = json.loads(content)
        except json.JSONDecodeError:
            return content
        if isinstance(parts, list) and all(isinstance(p, dict) and "type" in p for p in parts):
            return parts
    return content


def _flat_message(m: dict[str, Any], default_role: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": m.get("role") or default_role, "content": _flat_content(m.get("content"))}
    calls = [{"id": c.get("id") or c.get("tool_call.id"), "type": "function",
              "function": {"name": c.get("name") or c.get("tool_call.function.name"),
                           "arguments": c.get("arguments") or c.get("tool_call.function.arguments") or "{}"}}
             for c in m.get("tool_calls") or []]
    if calls:
        message["tool_calls"] = calls
    if m.get("tool_call_id"):
        message["tool_call_id"] = m["tool_call_id"]
    return message


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise Skip("a gen_ai message attribute is not valid JSON") from None
    return value


def _part_message(m: dict[str, Any]) -> list[dict[str, Any]]:
    """One semconv ChatMessage (role + parts) → Chat Completions messages (tool responses
    become tool messages)."""
    texts, calls, results = [], [], []
    for part in m.get("parts") or []:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("content", "")))
        elif kind == "tool_call":
            args = part.get("arguments")
            calls.append({"id": part.get("id"), "type": "function", "function": {
                "name": part.get("name"), "arguments": args if isinstance(args, str) else json.dumps(args or {})}})
        elif kind == "tool_call_response":
            response = part.get("response")
            results.append({"role": "tool", "tool_call_id": part.get("id"),
                            "content": response if isinstance(response, str) else json.dumps(response)})
    if results:
        return results
    message: dict[str, Any] = {"role": m.get("role") or "user", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _conversation(attrs: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Input messages and the output message of a span, from whichever style it uses."""
    if "gen_ai.input.messages" in attrs:
        messages = [x for m in _json(attrs["gen_ai.input.messages"]) or [] for x in _part_message(m)]
        system = _json(attrs.get("gen_ai.system_instructions"))
        if system:
            text = system if isinstance(system, str) else "".join(str(p.get("content", "")) for p in system
                                                                  if isinstance(p, dict))
            messages.insert(0, {"role": "system", "content": text})
        outputs = [x for m in _json(attrs.get("gen_ai.output.messages")) or [] for x in _part_message(m)]
        return messages, (outputs[0] if outputs else None)
    for prompt, completion in (("gen_ai.prompt", "gen_ai.completion"), ("llm.input_messages", "llm.output_messages")):
        messages = [_flat_message(m, "user") for m in _indexed(attrs, prompt)]
        if messages:
            outputs = [_flat_message(m, "assistant") for m in _indexed(attrs, completion)]
            return messages, (outputs[0] if outputs else None)
    return [], None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def span_record(span: dict[str, Any]) -> Record:
    """A record from one span; raises Skip when the span carries no GenAI conversation."""
    attrs = _attributes(span.get("attributes"))
    messages, output = _conversation(attrs)
    if not messages:
        what = "a GenAI span without recorded messages" if any(k.startswith("gen_ai.") for k in attrs) \
            else "not a GenAI span (no gen_ai.* messages)"
        raise Skip(f"span {span.get('name')!r}: {what}")
    start, end = int(span.get("startTimeUnixNano") or 0), int(span.get("endTimeUnixNano") or 0)
    status = span.get("status") or {}
    failed = status.get("code") in (2, "STATUS_CODE_ERROR", "ERROR")
    model = attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model") or attrs.get("llm.model_name")
    record = Record(
        messages=messages, output=None if failed and output is None else output, model=model,
        params={name: attrs[key] for key, name in _PARAMS.items() if key in attrs},
        error={k: v for k, v in (("message", status.get("message") or "span status ERROR"),
                                 ("type", attrs.get("error.type"))) if v} if failed else None,
        latency_ms=(end - start) / 1e6 if start and end >= start else None,
        prompt_tokens=_int(attrs.get("gen_ai.usage.input_tokens", attrs.get("gen_ai.usage.prompt_tokens",
                                                                              attrs.get("llm.token_count.prompt")))),
        completion_tokens=_int(attrs.get("gen_ai.usage.output_tokens", attrs.get(
            "gen_ai.usage.completion_tokens", attrs.get("llm.token_count.completion")))),
        metadata={k: v for k, v in {"trace_id": span.get("traceId"), "span_id": span.get("spanId"),
                                    "span_name": span.get("name"),
                                    "provider": attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system")}.items()
                  if v})
    if start:
        record.created_at = start / 1e9
    return record


def span_position(line: str, span: dict[str, Any]) -> tuple[str, str]:
    """Where a span is (``line#spanId``) and the content its origin digests."""
    return f"{line}#{span.get('spanId') or digest(json.dumps(span, sort_keys=True))}", \
        json.dumps(span, sort_keys=True, ensure_ascii=False)
