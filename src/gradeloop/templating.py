"""``{{ item.a.b[0] }}`` / ``{{ sample.output_text }}`` templates, as OpenAI's graders use them.

A template names a namespace (``item`` or ``sample``) and a JSON-path-like route into it:
dotted keys, ``[0]`` indexes and ``["quoted key"]``. Spaces inside the braces are optional.
A path that goes on past a tool call's ``arguments`` string reads into that string parsed as
JSON (``sample.output_tools[0].function.arguments.city``). A variable that does not resolve raises :class:`~gradeloop.errors.TemplateError`
(``invalid_variable_error``); it never renders as an empty string.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import TemplateError

__all__ = ["render", "render_value", "render_message", "resolve", "variables", "has_template", "sample_namespace"]

NAMESPACES = ("item", "sample")
_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_STEP = re.compile(r"""\.([A-Za-z_][\w-]*)|\[\s*(-?\d+)\s*\]|\[\s*"([^"]*)"\s*\]|\[\s*'([^']*)'\s*\]""")
_HEAD = re.compile(r"[A-Za-z_]\w*")
_MISSING = object()


def has_template(text: str) -> bool:
    """True when ``text`` contains at least one ``{{ … }}`` reference."""
    return isinstance(text, str) and _TEMPLATE.search(text) is not None


def variables(text: str) -> list[str]:
    """The variable paths referenced in ``text``, in order (``["item.x", …]``)."""
    return [m.group(1) for m in _TEMPLATE.finditer(text)]


def _parse(path: str) -> list[str | int]:
    head = _HEAD.match(path)
    if not head:
        raise TemplateError(f"cannot parse template variable '{path}'")
    steps: list[str | int] = [head.group(0)]
    pos = head.end()
    while pos < len(path):
        m = _STEP.match(path, pos)
        if not m:
            raise TemplateError(f"cannot parse template variable '{path}' at '{path[pos:]}'")
        key, index, dq, sq = m.groups()
        steps.append(int(index) if index is not None else (key if key is not None else (dq if dq is not None else sq)))
        pos = m.end()
    return steps


def resolve(path: str, context: dict[str, Any]) -> Any:
    """Look up ``path`` (``"item.a.b[0]"``) in ``context`` (``{"item": …, "sample": …}``).

    Returns the value; raises TemplateError naming the first step that does not exist.
    """
    steps = _parse(path.strip())
    namespace = steps[0]
    if namespace not in NAMESPACES:
        raise TemplateError(
            f"'{{{{ {path} }}}}': unknown namespace '{namespace}' (use 'item' or 'sample')"
        )
    if namespace not in context or context[namespace] is None:
        raise TemplateError(f"'{{{{ {path} }}}}': no {namespace} is available here")
    value: Any = context[namespace]
    walked = str(namespace)
    for step in steps[1:]:
        if isinstance(value, str) and walked.endswith(".arguments"):
            value = _json_arguments(value, path, walked)
        value = _step(value, step)
        if value is _MISSING:
            raise TemplateError(f"'{{{{ {path} }}}}': {walked} has no {_show(step)}")
        walked += f"[{step}]" if isinstance(step, int) else f".{step}"
    return value


def _json_arguments(text: str, path: str, walked: str) -> Any:
    """A tool call's ``arguments`` string parsed as JSON, so a path can go on into it (as
    OpenAI's templates did); the string itself stays what ``…arguments`` renders."""
    try:
        return json.loads(text)
    except ValueError:
        raise TemplateError(f"'{{{{ {path} }}}}': {walked} is not JSON, so it has no fields") from None


def _step(value: Any, step: str | int) -> Any:
    if isinstance(step, int):
        if isinstance(value, list) and -len(value) <= step < len(value):
            return value[step]
        return _MISSING
    if isinstance(value, dict):
        return value.get(step, _MISSING)
    return _MISSING


def field_at(value: Any, path: str, default: Any = None) -> Any:
    """The value at a dotted ``path`` (``a.b``) of a JSON object, or ``default`` where a part is
    missing (pass a sentinel of your own to tell a missing field from a null one)."""
    for part in path.split("."):
        value = _step(value, part)
        if value is _MISSING:
            return default
    return value


def _show(step: str | int) -> str:
    return f"index {step}" if isinstance(step, int) else f"field '{step}'"


def to_text(value: Any) -> str:
    """How a resolved value appears inside a string: strings as-is, everything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def render(text: str, context: dict[str, Any]) -> str:
    """Substitute every ``{{ … }}`` in ``text``; returns the rendered string."""
    if not isinstance(text, str) or "{{" not in text:
        return text
    return _TEMPLATE.sub(lambda m: to_text(resolve(m.group(1), context)), text)


def render_value(text: str, context: dict[str, Any]) -> Any:
    """Like :func:`render`, but a string that is exactly one reference returns the raw value.

    Used where a template selects an object (``item_reference: item.messages``).
    """
    m = _TEMPLATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if m:
        return resolve(m.group(1), context)
    return render(text, context)


def sample_namespace(
    output_text: str | None,
    *,
    tool_calls: list[dict] | None = None,
    choices: list[dict] | None = None,
    finish_reason: str | None = None,
    trajectory: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the ``sample`` namespace from a model output.

    ``output_json`` is present only when ``output_text`` parses as a JSON object or array;
    ``trajectory`` only for an agent episode (its messages, tool calls and final state).
    """
    text = output_text or ""
    sample: dict[str, Any] = {
        "output_text": text,
        "output_tools": tool_calls or [],
        "choices": choices
        if choices is not None
        else [{"index": 0, "message": _message(text, tool_calls), "finish_reason": finish_reason or "stop"}],
    }
    parsed = _parse_json(text)
    if parsed is not None:
        sample["output_json"] = parsed
    if trajectory is not None:
        sample["trajectory"] = trajectory
    return sample


def _message(text: str, tool_calls: list[dict] | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _parse_json(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, (dict, list)) else None


_TEXT_PARTS = ("input_text", "output_text", "text")


def render_message(message: dict[str, Any], ctx: dict[str, Any] | None) -> dict[str, Any]:
    """One EasyInputMessage / EvalItem / chat message → a Chat Completions message with its
    templates rendered against ``ctx`` (None: no rendering). Text parts are joined; image
    parts become ``image_url`` parts."""
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
