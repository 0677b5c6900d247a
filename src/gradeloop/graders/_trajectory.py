"""Graders over agent episodes: ``tool_called``, ``final_state``, ``no_forbidden_tool`` (gradeloop types).

They read the episode from ``sample.trajectory`` (its ``tool_calls`` and ``final_state``, see
docs/agents.md); ``tool_called`` and ``no_forbidden_tool`` fall back to ``sample.output_tools``
(a single completion's tool calls) when the sample has no trajectory.

```yaml
- type: tool_called                  # tool X was called with arguments matching Y
  name: refunded the order
  tool: refund_order                 # templated
  arguments: {order_id: "{{ item.order_id }}"}   # subset match, each value templated
  argument_patterns: {reason: "damag|broken"}    # optional: a regex searched in an argument's value
  min_count: 1                       # matching calls needed (default 1); max_count: none by default
  succeeded_only: false              # count only calls that returned a result (no error)

- type: final_state                  # τ-bench's end-state check
  name: end state
  expected: "{{ item.expected_state }}"
  keys: [orders, refunds.A1]         # optional: compare only these (dotted) keys; default all
                                     # score: the share of keys that match; passes when all do

- type: no_forbidden_tool            # the answer came without calling any of these tools
  name: no transfer
  tools: [transfer_to_human, "{{ item.forbidden_tool }}"]
```

Values compare as JSON: numbers by value (``1 == 1.0``), booleans apart from numbers, objects
by keys, arrays in order. A subset match requires every key of ``arguments`` (recursively, for
nested objects) and ignores the others.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..spec import GraderModel, register_grader_check, register_grader_model
from ..templating import field_at, render, render_value
from ._base import GradeResult, GradingContext, register_grader

_TRAJECTORY_STATE = "{{ sample.trajectory.final_state }}"


@register_grader_model
class ToolCalledGrader(GraderModel):
    """Tool ``tool`` was called with arguments matching ``arguments`` (see the module docstring)."""

    type: Literal["tool_called"]
    tool: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    argument_patterns: dict[str, str] = Field(default_factory=dict)
    min_count: int = Field(default=1, ge=0)
    max_count: int | None = Field(default=None, ge=0)
    succeeded_only: bool = False

    @model_validator(mode="after")
    def _counts(self) -> "ToolCalledGrader":
        if self.max_count is not None and self.max_count < self.min_count:
            raise ValueError(f"max_count {self.max_count} is below min_count {self.min_count}")
        return self


@register_grader_model
class FinalStateGrader(GraderModel):
    """The episode's final state equals the expected state (see the module docstring)."""

    type: Literal["final_state"]
    expected: dict[str, Any] | str = "{{ item.expected_state }}"
    state: str = _TRAJECTORY_STATE
    keys: list[str] | None = None

    @field_validator("keys")
    @classmethod
    def _some(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("keys must name at least one key (leave it out to compare every key)")
        return value


@register_grader_model
class NoForbiddenToolGrader(GraderModel):
    """None of ``tools`` was called (see the module docstring)."""

    type: Literal["no_forbidden_tool"]
    tools: list[str] | str

    @field_validator("tools")
    @classmethod
    def _some(cls, value: list[str] | str) -> list[str] | str:
        if not value:
            raise ValueError("tools must name at least one tool")
        return value


def _check_patterns(grader: ToolCalledGrader) -> None:
    for key, pattern in grader.argument_patterns.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}", ("argument_patterns", key)) from None


register_grader_check("tool_called", _check_patterns)


# -- JSON comparison ------------------------------------------------------------------


def json_equal(a: Any, b: Any) -> bool:
    """Whether two JSON values are equal: numbers by value, booleans apart from numbers,
    objects by keys, arrays in order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def subset_match(expected: Any, actual: Any) -> bool:
    """Whether ``actual`` holds ``expected``: every key of an expected object (recursively)
    with a matching value, other keys ignored; anything else compares with :func:`json_equal`."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and subset_match(v, actual[k]) for k, v in expected.items())
    return json_equal(expected, actual)


_MISSING = object()


def _at(value: Any, path: str) -> Any:
    return field_at(value, path, _MISSING)  # a missing key and a null value differ here


# -- the calls of an episode ----------------------------------------------------------


def _parsed(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def episode_calls(sample: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool calls of a sample as ``{"name", "arguments", "error"}``: the trajectory's when it
    has one, else the final message's ``output_tools`` (arguments parsed as JSON where they parse)."""
    trajectory = sample.get("trajectory")
    if isinstance(trajectory, dict):
        return [{"name": c.get("name"), "arguments": _parsed(c.get("arguments")), "error": c.get("error")}
                for c in trajectory.get("tool_calls") or [] if isinstance(c, dict)]
    calls = []
    for call in sample.get("output_tools") or []:
        function = (call or {}).get("function") or {}
        calls.append({"name": function.get("name"), "arguments": _parsed(function.get("arguments")), "error": None})
    return calls


def _pattern_ok(arguments: Any, patterns: dict[str, str]) -> bool:
    for path, pattern in patterns.items():
        value = _at(arguments, path)
        if value is _MISSING:
            return False
        if re.search(pattern, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)) is None:
            return False
    return True


def _render_object(value: Any, ctx: dict[str, Any]) -> Any:
    """Render every string in a JSON value; a string that is one reference keeps the value's type."""
    if isinstance(value, str):
        return render_value(value, ctx)
    if isinstance(value, dict):
        return {k: _render_object(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_object(v, ctx) for v in value]
    return value


def _invalid(message: str) -> GradeResult:
    return GradeResult(score=0.0, errors={"invalid_variable_error": True}, details={"error": message})


@register_grader("tool_called")
async def grade_tool_called(grader: ToolCalledGrader, sample: dict, item: dict,
                            context: GradingContext) -> GradeResult:
    """1 when the number of matching calls is within ``[min_count, max_count]``, else 0."""
    ctx = {"item": item, "sample": sample}
    tool = render(grader.tool, ctx)
    expected = _render_object(grader.arguments, ctx)
    if not isinstance(expected, dict):
        return _invalid(f"arguments must be an object, the template gave {type(expected).__name__}")
    patterns = {k: render(v, ctx) for k, v in grader.argument_patterns.items()}
    calls = [c for c in episode_calls(sample) if c["name"] == tool]
    if grader.succeeded_only:
        calls = [c for c in calls if not c["error"]]
    matching = [c for c in calls if (not expected or subset_match(expected, c["arguments"]))  # {}: any arguments
                and _pattern_ok(c["arguments"], patterns)]
    count = len(matching)
    ok = count >= grader.min_count and (grader.max_count is None or count <= grader.max_count)
    return GradeResult(score=float(ok), passed=ok,
                       details={"tool": tool, "calls": len(calls), "matching": count,
                                "arguments_seen": [c["arguments"] for c in calls][:20]})


def _state_keys(grader: FinalStateGrader, expected: dict, actual: dict) -> list[str]:
    if grader.keys is not None:
        return list(grader.keys)
    return list(dict.fromkeys([*expected, *actual]))


@register_grader("final_state")
async def grade_final_state(grader: FinalStateGrader, sample: dict, item: dict,
                            context: GradingContext) -> GradeResult:
    """The share of compared keys whose values are equal; passes when all are."""
    ctx = {"item": item, "sample": sample}
    expected = _render_object(grader.expected, ctx)
    actual = render_value(grader.state, ctx)
    for label, value in (("expected", expected), ("state", actual)):
        if not isinstance(value, dict):
            return _invalid(f"{label} must be an object, the template gave {type(value).__name__}")
    keys = _state_keys(grader, expected, actual)
    if not keys:  # two empty states
        return GradeResult(score=1.0, passed=True, details={"keys": 0, "mismatched": []})
    wrong = [k for k in keys if not _same(_at(expected, k), _at(actual, k))]
    score = (len(keys) - len(wrong)) / len(keys)
    details: dict[str, Any] = {"keys": len(keys), "mismatched": wrong[:50]}
    if wrong:
        details["first_mismatch"] = {"key": wrong[0], "expected": _shown(_at(expected, wrong[0])),
                                     "actual": _shown(_at(actual, wrong[0]))}
    return GradeResult(score=score, passed=not wrong, details=details)


def _same(a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return a is b
    return json_equal(a, b)


def _shown(value: Any) -> Any:
    return "(missing)" if value is _MISSING else value


@register_grader("no_forbidden_tool")
async def grade_no_forbidden_tool(grader: NoForbiddenToolGrader, sample: dict, item: dict,
                                  context: GradingContext) -> GradeResult:
    """1 when no call names a listed tool (whether or not the call succeeded), else 0; a
    template that gives an empty list forbids nothing."""
    ctx = {"item": item, "sample": sample}
    names = _tool_names(grader.tools, ctx)
    if names is None:
        return _invalid("tools must be a list of tool names")
    called = [c["name"] for c in episode_calls(sample) if c["name"] in names]
    return GradeResult(score=float(not called), passed=not called, details={"forbidden_calls": called})


def _tool_names(tools: list[str] | str, ctx: dict[str, Any]) -> set[str] | None:
    value = render_value(tools, ctx) if isinstance(tools, str) else [render_value(t, ctx) for t in tools]
    if isinstance(value, str):
        value = [value]
    flat: list[Any] = []
    for entry in value if isinstance(value, list) else [None]:
        flat.extend(entry if isinstance(entry, list) else [entry])
    if not all(isinstance(n, str) for n in flat):
        return None
    return set(flat)  # a template may give an empty list: this item forbids nothing
