"""Agent tasks in small deterministic environments, as an eval directory any model can run.

Two environments, each a state, a policy (in the system prompt) and seven function tools plus
``ask_user`` (implemented in the ``tools.py`` the build writes):

- ``order_desk``: customers and orders; cancel (only while processing, once confirmed), change an
  address, refund an item (delivered within 30 days), hand over to a human (a final tool);
- ``calendar``: a week of meetings; book (no double-booking, weekdays 09:00–17:00), move, cancel
  (once confirmed).

Every task has an expected end state (``expected_state``; τ-bench's end-state check) and the
calls that reach it (``reference_calls``). Tasks the policy forbids (a late refund, cancelling a
shipped order, a weekend or double-booked meeting) expect the state unchanged (``no_change``)
and name the call that would break the policy (``forbidden_calls``, its tool in
``forbidden_tools``). A share of tasks is ambiguous (``ambiguous``): a detail the agent needs is
missing, the right first move is ``ask_user``, whose reply (from the state) supplies it; on
clear tasks asking is wrong. The criteria (:data:`CRITERIA`) check the end state, asking when
needed and no forbidden call with gradeloop's graders over episodes. Each
task is written once per prompt variant (``prompt_variant``): the system prompt alone, or with a
persistence, tool-use or planning reminder (the three habits OpenAI's GPT-4.1 prompting guide
recommends for agents), or all three. The same arguments give byte-identical files, and task
``k`` of an environment does not depend on ``--n``.
"""

from __future__ import annotations

import copy
import datetime
import json
import random
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from ..errors import InputError
from . import _agent_calendar, _agent_orders
from ._long import write_eval

__all__ = ["ENVS", "VARIANTS", "REMINDERS", "generate", "build", "eval_definition", "tools_source",
           "reference_trajectory"]

SUITE_VERSION = 1
ENVS = ("order_desk", "calendar")
VARIANTS = ("none", "persistence", "tools", "planning", "all")
_MODULES = {"order_desk": _agent_orders, "calendar": _agent_calendar}
REMINDERS = {
    "persistence": "This request may take several steps. See it through yourself: do not hand the conversation "
                   "back while any part of it is still open, and stop only when it has been fully dealt with.",
    "tools": "Do not rely on memory or assumptions about orders, customers or meetings: read the facts with "
             "your tools, and act on what they return.",
    "planning": "Work deliberately. Before each tool call, state briefly what you intend to do and why; after "
                "each result, consider what it tells you before you choose the next step.",
}
ASK_USER = {"type": "function", "function": {
    "name": "ask_user", "description": "Ask the person you are helping a question and get their reply.",
    "parameters": {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"],
                   "additionalProperties": False}}}
_FIRST_MONDAY = datetime.date(2026, 1, 5)


def tools_source() -> str:
    """The text of the ``tools.py`` that ``build`` writes (standard library only)."""
    return Path(__file__).with_name("_agent_tools.py").read_text(encoding="utf-8")


def _system(env: str, state: dict[str, Any], variant: str) -> str:
    if env == "order_desk":
        text = _agent_orders.POLICY.format(today=state["today"])
    else:
        day = datetime.date.fromisoformat(state["today"])
        text = _agent_calendar.POLICY.format(owner=state["owner"]["name"], today=state["today"],
                                             weekday=_agent_calendar.WEEKDAYS[day.weekday()])
    chosen = list(REMINDERS) if variant == "all" else [variant] if variant in REMINDERS else []
    return "\n\n".join([text] + [REMINDERS[name] for name in chosen])


def _ambiguous_before(k: int, share: float) -> int:
    """How many of an environment's first ``k`` tasks are ambiguous: ``share`` of them, rounded, so
    they are spread evenly and any prefix holds its share."""
    return int(k * share + 0.5)


def _kind(module: ModuleType, k: int, share: float) -> tuple[str, bool]:
    """Task ``k``'s kind and ambiguity: ambiguous tasks cycle through the kinds with an ambiguous
    variant, clear ones through all kinds."""
    before = _ambiguous_before(k, share)
    if _ambiguous_before(k + 1, share) > before:
        return module.AMBIGUOUS[before % len(module.AMBIGUOUS)], True
    return module.KINDS[(k - before) % len(module.KINDS)], False


def _task(env: str, k: int, seed: int, share: float) -> dict[str, Any]:
    """Task ``k`` of ``env``: its kind, ambiguity and the environment's task fields."""
    module = _MODULES[env]
    kind, ambiguous = _kind(module, k, share)
    rng = random.Random(f"agents:{seed}:{env}:{k}")
    today = _FIRST_MONDAY + datetime.timedelta(weeks=rng.randrange(40))
    drawn = module.task(rng, kind, ambiguous, today)
    return {"kind": drawn.pop("kind", kind), "ambiguous": ambiguous, **drawn}


def _rows(env: str, k: int, seed: int, share: float, variants: list[str]) -> list[dict[str, Any]]:
    task = _task(env, k, seed, share)
    stem = f"{env}-{k:03d}"
    who = "the customer" if env == "order_desk" else "the calendar's owner"
    instructions = (f"You are {who}. Your first message was: {task['request']} What you want: {task['goal']}. "
                    f"If the agent asks, answer: {task['state']['user_reply']}")
    return [{"id": f"{stem}.{variant}", "stem": stem, "env": env, "kind": task["kind"],
             "ambiguous": task["ambiguous"], "no_change": task["no_change"], "prompt_variant": variant,
             "messages": [{"role": "system", "content": _system(env, task["state"], variant)},
                          {"role": "user", "content": task["request"]}],
             "state": task["state"], "expected_state": task["expected_state"],
             "reference_calls": task["reference_calls"], "forbidden_calls": task["forbidden_calls"],
             "forbidden_tools": sorted({c["name"] for c in task["forbidden_calls"]}),
             "user_instructions": instructions} for variant in variants]


def generate(n: int, seed: int = 0, envs: list[str] | None = None, ambiguous_share: float = 0.25,
             variants: list[str] | None = None) -> list[dict[str, Any]]:
    """``n`` tasks taken in turn from ``envs`` (default both), each once per prompt variant
    (default all five); a share ``ambiguous_share`` of each environment's tasks is ambiguous.
    Returns the items in order (task, variant). Raises InputError on a bad argument."""
    envs, variants = envs or list(ENVS), variants or list(VARIANTS)
    if n < 1:
        raise InputError("n must be at least 1", field="n")
    if not 0 <= ambiguous_share <= 1:
        raise InputError(f"{ambiguous_share} is not a share (0 to 1)", field="ambiguous_share")
    for values, known, name in ((envs, ENVS, "env"), (variants, VARIANTS, "variants")):
        bad = [v for v in values if v not in known]
        if bad:
            raise InputError(f"unknown value {bad[0]!r} (one of: {', '.join(known)})", field=name)
    return [row for i in range(n)
            for row in _rows(envs[i % len(envs)], i // len(envs), seed, ambiguous_share, variants)]


def _tools(envs: list[str]) -> list[dict[str, Any]]:
    return [tool for env in envs for tool in _MODULES[env].TOOLS] + [ASK_USER]


# Ask or assume, with declarative graders: the first move asked exactly when the item is
# ambiguous (the trajectory's ``asked``, the same test as the clarification metrics), and on a
# clear item the agent never called ask_user later either. No single type says "first move on
# some items, never on the others", so a multi grader combines three.
ASKS_WHEN_NEEDED: dict[str, Any] = {
    "type": "multi", "name": "asks when needed",
    "graders": {
        "first_move": {"type": "string_check", "name": "the first move asks exactly on ambiguous items",
                       "input": "{{ sample.trajectory.asked }}", "reference": "{{ item.ambiguous }}",
                       "operation": "eq"},
        "never_asked": {"type": "no_forbidden_tool", "name": "never called ask_user", "tools": ["ask_user"]},
        "ambiguous": {"type": "string_check", "name": "the item is ambiguous", "input": "{{ item.ambiguous }}",
                      "reference": "true", "operation": "eq"},
    },
    "calculate_output": "first_move * max(never_asked, ambiguous)",
    "pass_threshold": 1.0,
}
CRITERIA: list[dict[str, Any]] = [
    {"type": "final_state", "name": "end state", "expected": "{{ item.expected_state }}"},
    ASKS_WHEN_NEEDED,
    {"type": "no_forbidden_tool", "name": "no forbidden call", "tools": "{{ item.forbidden_tools }}"},
]

_ITEM_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "stem": {"type": "string"}, "env": {"type": "string", "enum": list(ENVS)},
        "kind": {"type": "string"}, "ambiguous": {"type": "boolean"}, "no_change": {"type": "boolean"},
        "prompt_variant": {"type": "string", "enum": list(VARIANTS)},
        "messages": {"type": "array", "minItems": 2}, "state": {"type": "object"},
        "expected_state": {"type": "object"}, "reference_calls": {"type": "array"},
        "forbidden_calls": {"type": "array"}, "forbidden_tools": {"type": "array", "items": {"type": "string"}},
        "user_instructions": {"type": "string"},
    },
    "required": ["id", "env", "kind", "ambiguous", "no_change", "prompt_variant", "messages", "state",
                 "expected_state", "reference_calls", "forbidden_tools"],
}


def eval_definition(meta: dict[str, Any]) -> dict[str, Any]:
    """The eval definition ``build`` writes next to ``data.jsonl`` and ``tools.py``: the tools in
    ``sampling_params.tools``, the ``agent:`` block, and the criteria over the trajectory
    (:data:`CRITERIA`)."""
    envs = meta["envs"]
    agent: dict[str, Any] = {"max_turns": 12, "state": "{{ item.state }}"}
    final = [name for env in envs for name in _MODULES[env].FINAL_TOOLS]
    if final:
        agent["final_tools"] = final
    agent["tools"] = {"python": "tools.py"}
    return {
        "name": f"Agents ({', '.join(e.replace('_', ' ') for e in envs)}; n={meta['n']}, seed={meta['seed']})",
        "metadata": {"suite": "agents", "version": SUITE_VERSION, **meta,
                     "description": "Multi-turn tool use under a policy: end states, ask-or-assume, prompt "
                                    "reminders."},
        "data_source_config": {"type": "custom", "item_schema": _ITEM_SCHEMA, "include_sample_schema": True},
        "testing_criteria": copy.deepcopy(CRITERIA),
        "data_source": {"type": "completions", "source": {"type": "file", "path": "data.jsonl"},
                        "input_messages": {"type": "item_reference", "item_reference": "item.messages"},
                        "sampling_params": {"temperature": 0, "max_completion_tokens": 512,
                                            "tools": _tools(envs)}},
        "agent": agent,
    }


def build(n: int, seed: int, out_dir: str | Path, *, envs: list[str] | None = None, ambiguous_share: float = 0.25,
          variants: list[str] | None = None) -> dict[str, Any]:
    """Write ``out_dir/eval.yaml``, ``out_dir/data.jsonl`` and ``out_dir/tools.py``. Returns
    ``{"eval", "rows", "tools", "items", "counts": {"env", "kind", "ambiguous", "prompt_variant"}}``."""
    items = generate(n, seed, envs, ambiguous_share, variants)
    meta = {"n": n, "seed": seed, "envs": envs or list(ENVS), "ambiguous_share": ambiguous_share,
            "variants": variants or list(VARIANTS)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tools.py").write_text(tools_source(), encoding="utf-8", newline="\n")
    written = write_eval(out, eval_definition(meta), items,
                         "# Built by `gradeloop suite agents build`; tasks are in data.jsonl, tools in tools.py.\n",
                         rows_name="data.jsonl")
    counts = {k: dict(Counter(str(i[k]).lower() for i in items)) for k in ("env", "kind", "ambiguous",
                                                                         "prompt_variant")}
    return {**written, "tools": str(out / "tools.py"), "counts": counts}


def _content(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result)


def reference_trajectory(item: dict[str, Any], tools: ModuleType | dict[str, Callable] | None = None,
                         calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The trajectory (in the shape the runner stores as ``sample.trajectory``) of an agent that makes
    ``calls`` (default: the item's ``reference_calls``), one per turn, then answers; the calls run
    on a copy of the item's state through ``tools`` (a module such as the written ``tools.py``, or
    a name → function mapping; default this package's copy). A tool that raises gives an error
    result, as in an episode. For tests and for SFT data built from reference solutions."""
    table = tools if isinstance(tools, dict) else vars(tools or _tool_module())
    state, messages = copy.deepcopy(item["state"]), copy.deepcopy(item["messages"])
    calls = item["reference_calls"] if calls is None else calls
    record, stop = [], "answer"
    for turn, call in enumerate(calls, start=1):
        call_id = f"call_{turn}"
        messages.append({"role": "assistant", "content": None, "tool_calls": [{
            "id": call_id, "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}]})
        result, error = _run_tool(table, call, state)
        record.append({"turn": turn, "id": call_id, "name": call["name"], "arguments": call["arguments"],
                       "result": result, "error": error})
        messages.append({"role": "tool", "tool_call_id": call_id,
                         "content": _content(result) if error is None else f"error: {error['message']}"})
        if call["name"] in _FINAL_TOOLS:
            stop = "final_tool"
            break
    if stop == "answer":
        messages.append({"role": "assistant", "content": "Done." if not item.get("no_change")
                         else "Sorry, the policy does not allow that, so I have changed nothing."})
    return {"messages": messages, "tool_calls": record, "final_state": state, "stop_reason": stop,
            "turns": len(record) + (stop == "answer"), "faults": 0,
            "asked": bool(record) and record[0]["name"] == "ask_user"}


_FINAL_TOOLS = frozenset(name for module in _MODULES.values() for name in module.FINAL_TOOLS)


def _run_tool(table: dict[str, Any], call: dict[str, Any], state: dict[str, Any]) -> tuple[Any, dict | None]:
    function = table.get(call["name"]) if not call["name"].startswith("_") else None
    if not callable(function):
        return None, {"type": "unknown_tool", "message": f"no tool {call['name']!r}", "injected": False}
    try:
        return function(state, **call["arguments"]), None
    except Exception as exc:  # the tool's own error, reported to the model as the runner does
        return None, {"type": "tool_error", "message": str(exc), "injected": False}


def _tool_module() -> ModuleType:
    from . import _agent_tools

    return _agent_tools
