"""Turning a row into Chat Completions messages: templates or an item reference."""

from __future__ import annotations

from typing import Any

from ..errors import TemplateError
from ..spec import ItemReferenceMessages, TemplateMessages
from ..templating import render, resolve

_TEXT_PARTS = ("input_text", "output_text", "text")


def build_messages(spec: TemplateMessages | ItemReferenceMessages, item: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat messages for ``item``; raises TemplateError for a missing variable."""
    ctx = {"item": item}
    if isinstance(spec, ItemReferenceMessages):
        value = resolve(spec.item_reference.strip().strip("{} "), ctx)
        if not isinstance(value, list):
            raise TemplateError(f"'{spec.item_reference}' is not a list of messages")
        return [normalize_message(m, None) for m in value]
    return [normalize_message(m, ctx) for m in spec.template]


def normalize_message(message: dict[str, Any], ctx: dict[str, Any] | None) -> dict[str, Any]:
    """One EasyInputMessage / EvalItem / chat message → a chat message, templates rendered."""
    def text(value: str) -> str:
        return render(value, ctx) if ctx is not None else value

    out: dict[str, Any] = {"role": message.get("role", "user")}
    content = message.get("content")
    if isinstance(content, str) or content is None:
        out["content"] = text(content or "")
    elif isinstance(content, dict):
        out["content"] = _part_text(content, text) if content.get("type") in _TEXT_PARTS else [_part(content, text)]
    elif isinstance(content, list):
        parts = [_part(p, text) if isinstance(p, dict) else {"type": "text", "text": text(str(p))} for p in content]
        if all(p["type"] == "text" for p in parts):
            out["content"] = "\n".join(p["text"] for p in parts) if len(parts) != 1 else parts[0]["text"]
        else:
            out["content"] = parts
    for key in ("tool_calls", "tool_call_id", "name"):
        if key in message:
            out[key] = message[key]
    return out


def _part_text(part: dict[str, Any], text: Any) -> str:
    return text(part.get("text", ""))


def _part(part: dict[str, Any], text: Any) -> dict[str, Any]:
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        return {"type": "text", "text": text(part.get("text", ""))}
    if kind == "input_image":
        image = {"url": text(part.get("image_url", ""))}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "image_url":
        return part
    raise TemplateError(f"message content part of type '{kind}' is not supported")
