"""Function tools on local models: the prompt, a grammar for the calls, and reading them back.

A request's ``tools``, ``tool_choice`` and ``parallel_tool_calls`` become a :class:`ToolPlan`.
Two formats, picked per model from its chat template:

- ``hermes``: the chat template renders ``tools`` itself and its calls are
  ``<tool_call>{"name": …, "arguments": {…}}</tool_call>`` blocks (Qwen 2.5/3, Hermes,
  SmolLM3 and many others): the template writes the tool list, earlier calls and results.
- ``generic``: any other template. A section added to the system message lists the tools
  and asks for a reply that is either plain text (not starting with ``{``) or exactly
  ``{"tool_calls": [{"name": …, "arguments": {…}}]}``; earlier calls are written back in
  that form and tool results as a user message.

Either way the reply is constrained with the grammar machinery of ``response_format``
(llguidance): every call's arguments follow that tool's JSON schema. With ``required`` or a
named function the whole reply is calls; with ``auto`` the grammar is "calls | text whose
first character is not the call's first character", so the model picks a branch with its
first token and, once it starts a call, can only finish a call that parses.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ._structured import _JSON_OPTIONS, lark_grammar

__all__ = [
    "ToolPlan",
    "check_tools",
    "native_messages",
    "read_tool_calls",
    "render_history",
    "starts_call",
    "template_tool_format",
    "tool_grammar",
    "tool_plan",
    "with_tool_section",
]

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
# calls per reply when parallel calls are allowed: a small model may repeat one call until the
# token limit, which would cut the reply and leave no call that parses
MAX_PARALLEL_CALLS = 8
_PROBE = "gradeloop_probe_function"


@dataclass(frozen=True)
class ToolPlan:
    """What a request allows: the functions offered (``{name, description?, parameters?}``),
    ``choice`` (``auto``, ``required`` or ``named``; ``name`` for the last) and ``parallel``."""

    functions: tuple[dict[str, Any], ...]
    choice: str = "auto"
    name: str | None = None
    parallel: bool = True

    @property
    def callable(self) -> tuple[dict[str, Any], ...]:
        """The functions the reply may call (only the named one under a named choice)."""
        return tuple(f for f in self.functions if self.choice != "named" or f["name"] == self.name)


def tool_plan(params: dict[str, Any]) -> ToolPlan | None:
    """The plan of ``params`` (see :func:`check_tools` for what is refused), or None when no
    tool is offered or ``tool_choice`` is ``none``: then the reply is plain text."""
    check_tools(params)
    tools, choice = params.get("tools") or [], params.get("tool_choice") or "auto"
    if not tools or choice == "none":
        return None
    functions = tuple(t["function"] for t in tools)
    parallel = params.get("parallel_tool_calls", True) is not False
    if isinstance(choice, dict):
        return ToolPlan(functions, "named", choice["function"]["name"], parallel)
    return ToolPlan(functions, choice, None, parallel)


def check_tools(params: dict[str, Any]) -> None:
    """Raise InputError (field ``tools`` or ``tool_choice``) unless ``tools`` is a list of
    function tools with distinct names and ``tool_choice`` is auto, required, none or
    ``{"type": "function", "function": {"name": <one of them>}}``."""
    tools = params.get("tools") or []
    if not isinstance(tools, list):
        raise InputError("tools must be a list of function tools", field="tools")
    names = [_function_name(t, i) for i, t in enumerate(tools)]
    if len(set(names)) < len(names):
        raise InputError(f"tools: two functions share a name ({', '.join(names)})", field="tools")
    choice = params.get("tool_choice")
    if choice is None or choice in ("auto", "required", "none"):
        if choice == "required" and not tools:
            raise InputError("tool_choice is required but no tools are given", field="tool_choice")
        return
    named = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    if not isinstance(named, dict) or named.get("name") not in names:
        raise InputError(f"tool_choice must be auto, required, none or {{\"type\": \"function\", \"function\": "
                         f"{{\"name\": …}}}} naming one of the tools ({', '.join(names) or 'none given'}); "
                         f"got {json.dumps(choice)[:80]}", field="tool_choice")


def _function_name(tool: Any, index: int) -> str:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        raise InputError(f"tools[{index}] must be {{\"type\": \"function\", \"function\": {{\"name\": …, "
                         "\"parameters\": {…}}}}", field="tools")
    if not isinstance(function.get("parameters", {}), dict):
        raise InputError(f"tools[{index}].function.parameters must be a JSON schema object", field="tools")
    return function["name"]


# -- the grammar --------------------------------------------------------------------------

def _call_schema(function: dict[str, Any], key: str = "arguments") -> dict[str, Any]:
    params = function.get("parameters") or {"type": "object"}
    return {"type": "object", "properties": {"name": {"const": function["name"]}, key: params},
            "required": ["name", key], "additionalProperties": False}


def _one_of(plan: ToolPlan) -> dict[str, Any]:
    calls = [_call_schema(f) for f in plan.callable]
    return calls[0] if len(calls) == 1 else {"anyOf": calls}


def calls_schema(plan: ToolPlan) -> dict[str, Any]:
    """The JSON schema of a generic-format reply that calls functions."""
    items = {"type": "array", "items": _one_of(plan), "minItems": 1,
             "maxItems": MAX_PARALLEL_CALLS if plan.parallel else 1}
    return {"type": "object", "properties": {"tool_calls": items}, "required": ["tool_calls"],
            "additionalProperties": False}


def _json(schema: dict[str, Any]) -> str:
    return "%json " + json.dumps({**schema, "x-guidance": _JSON_OPTIONS})


def tool_grammar(plan: ToolPlan, fmt: str) -> str:
    """The compiled llguidance grammar of a reply under ``plan`` in format ``fmt``; InputError
    (field ``tools``) when a tool's parameters are not a schema it can compile."""
    if fmt == "hermes":
        call = f'"{CALL_OPEN}\\n" {_json(_one_of(plan))} "\\n{CALL_CLOSE}"'
        more = f'("\\n" call){{0,{MAX_PARALLEL_CALLS - 1}}}' if plan.parallel else ""
        calls = f"calls: call {more}\ncall: {call}"
        text = "TEXT: /[^<][\\s\\S]*/"
    else:
        calls, text = "calls: " + _json(calls_schema(plan)), "TEXT: /[^{][\\s\\S]*/"
    start = "start: calls | TEXT" if plan.choice == "auto" else "start: calls"
    return lark_grammar(f"{start}\n{calls}\n{text}", "tools")


def starts_call(text: str, fmt: str) -> bool | None:
    """Whether a constrained reply that begins with ``text`` is a call (None: not known yet)."""
    if not text:
        return None
    return text[0] == ("<" if fmt == "hermes" else "{")


# -- reading a reply ----------------------------------------------------------------------

def read_tool_calls(text: str, fmt: str) -> tuple[str | None, list[dict[str, Any]]]:
    """``(content, tool_calls)`` of a reply: calls in OpenAI's shape (id ``call_…``, arguments
    as a JSON text). A reply that is not a complete call (e.g. cut at the token limit) is
    all content."""
    if fmt == "hermes":
        found = _hermes_calls(text)
    else:
        found = _generic_calls(text)
    if found is None:
        return text, []
    content, calls = found
    return content, [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                      "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)}}
                     for c in calls]


def _generic_calls(text: str) -> tuple[str | None, list[dict]] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    calls = data.get("tool_calls") if isinstance(data, dict) else None
    return (None, calls) if _well_formed(calls) else None


def _hermes_calls(text: str) -> tuple[str | None, list[dict]] | None:
    start = text.find(CALL_OPEN)
    if start < 0:
        return None
    calls = []
    for body in re.findall(re.escape(CALL_OPEN) + r"(.*?)" + re.escape(CALL_CLOSE), text[start:], flags=re.DOTALL):
        try:
            call = json.loads(body)
        except ValueError:
            return None
        if isinstance(call, dict) and "arguments" not in call and "parameters" in call:
            call["arguments"] = call.pop("parameters")
        calls.append(call)
    return (text[:start].strip() or None, calls) if _well_formed(calls) else None


def _well_formed(calls: Any) -> bool:
    return isinstance(calls, list) and bool(calls) and all(
        isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("arguments", {}), dict)
        for c in calls)


# -- the prompt ---------------------------------------------------------------------------

def _tool_section(plan: ToolPlan) -> str:
    lines = ["You can call these functions (name, description, JSON schema of the arguments):"]
    lines += [json.dumps({k: f[k] for k in ("name", "description", "parameters") if k in f}) for f in plan.functions]
    lines.append('To call functions, reply with only this JSON object, nothing before or after it: '
                 '{"tool_calls": [{"name": "<function name>", "arguments": {<arguments>}}]}')
    lines.append("You may call several functions at once." if plan.parallel else "Call one function at a time.")
    if plan.choice == "required":
        lines.append("You must call a function now.")
    elif plan.choice == "named":
        lines.append(f"You must call the function {plan.name} now.")
    else:
        lines.append('When no function is needed, reply in plain text (not starting with "{").')
    lines.append('Function results come back in a message "Tool results:".')
    return "\n".join(lines)


def with_tool_section(messages: list[dict[str, Any]], plan: ToolPlan) -> list[dict[str, Any]]:
    """``messages`` with the generic format's tool section added to the first system message
    (or in a new one)."""
    section = _tool_section(plan)
    first = messages[0] if messages else {}
    if first.get("role") in ("system", "developer") and isinstance(first.get("content"), str):
        return [dict(first, content=f"{first['content']}\n\n{section}"), *messages[1:]]
    return [{"role": "system", "content": section}, *messages]


def _arguments(call: dict[str, Any]) -> Any:
    arguments = (call.get("function") or {}).get("arguments")
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments if arguments is not None else {}


def render_history(messages: list[dict[str, Any]], text: Any) -> list[dict[str, str]]:
    """Plain ``{role, content}`` messages for a template without a tool format: an assistant
    message's calls are written as the generic reply that makes them, and a run of tool
    results becomes one user message ("Tool results:" then ``name (id): result`` per call).
    ``text(message)`` gives a message's text."""
    names: dict[str, str] = {}
    out: list[dict[str, str]] = []
    after_tool = False
    for m in messages:
        role = "system" if m.get("role") == "developer" else m.get("role", "user")
        if role == "tool":
            call_id = m.get("tool_call_id") or ""
            line = f"{m.get('name') or names.get(call_id, 'function')} ({call_id}): {text(m)}"
            if after_tool:
                out[-1]["content"] += "\n" + line
            else:
                out.append({"role": "user", "content": "Tool results:\n" + line})
            after_tool = True
            continue
        after_tool = False
        calls = [c for c in m.get("tool_calls") or [] if isinstance(c, dict)] if role == "assistant" else []
        names.update({c.get("id") or "": (c.get("function") or {}).get("name", "function") for c in calls})
        out.append({"role": role, "content": _with_calls(text(m), calls)})
    return out


def _with_calls(content: str, calls: list[dict[str, Any]]) -> str:
    if not calls:
        return content
    written = json.dumps({"tool_calls": [{"name": (c.get("function") or {}).get("name"), "arguments": _arguments(c)}
                                         for c in calls]})
    return f"{content}\n{written}" if content else written


def native_messages(messages: list[dict[str, Any]], text: Any) -> list[dict[str, Any]]:
    """Messages for a chat template with a tool format (transformers' convention): calls with
    arguments as objects, tool results with their ``tool_call_id`` (and ``name``)."""
    out = []
    for m in messages:
        role = "system" if m.get("role") == "developer" else m.get("role", "user")
        message: dict[str, Any] = {"role": role, "content": text(m)}
        if role == "assistant" and m.get("tool_calls"):
            message["tool_calls"] = [{"id": c.get("id"), "type": "function",
                                      "function": {"name": (c.get("function") or {}).get("name"),
                                                   "arguments": _arguments(c)}}
                                     for c in m["tool_calls"] if isinstance(c, dict)]
        if role == "tool":
            message.update({k: m[k] for k in ("tool_call_id", "name") if m.get(k)})
        out.append(message)
    return out


def template_tool_format(tokenizer: Any) -> str:
    """``hermes`` when ``tokenizer``'s chat template renders tools and writes calls in
    ``<tool_call>`` blocks, else ``generic``."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str) or CALL_OPEN not in template:
        return "generic"
    probe = [{"type": "function", "function": {"name": _PROBE, "parameters": {"type": "object"}}}]
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tools=probe,
                                             add_generation_prompt=True, tokenize=False)
    except Exception:  # noqa: BLE001 - a template that fails on tools has no tool format we can use
        return "generic"
    return "hermes" if _PROBE in text else "generic"
