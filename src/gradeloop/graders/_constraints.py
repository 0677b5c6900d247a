"""``constraints`` (a gradeloop grader type): verifiable instructions checked on the sample.

```yaml
- type: constraints
  name: follows the instructions
  input: "{{ sample.output_text }}"          # the default
  constraints:                               # a list, or a template naming the item's list
    - {id: punctuation:no_comma}
    - {id: length_constraints:number_words, relation: at least, num_words: 300}
  mode: strict                               # or loose (IFEval's eight response variants)
  score: all                                 # 1 when every constraint holds; or fraction
```

``constraints`` may also be a template such as ``"{{ item.constraints }}"`` resolving to such
a list, or to IFEval's ``{"instruction_id_list": [...], "kwargs": [...]}``. Each entry is
``{"id": ..., **kwargs}`` or ``{"id": ..., "kwargs": {...}}``. Per-constraint verdicts and
explanations are in ``details.constraints``.
"""

from __future__ import annotations

from typing import Any, Literal

from ..spec import GraderModel, register_grader_check, register_grader_model
from ..templating import render, render_value
from ._base import GradeResult, GradingContext, register_grader
from .constraints import check_constraint, get_constraint, parse_params


@register_grader_model
class ConstraintsGrader(GraderModel):
    """Verifiable instructions as a grader (see the module docstring)."""

    type: Literal["constraints"]
    input: str = "{{ sample.output_text }}"
    constraints: list[dict[str, Any]] | str
    mode: Literal["strict", "loose"] = "strict"
    score: Literal["all", "fraction"] = "all"
    pass_threshold: float | None = None


def normalize_constraints(value: Any) -> list[tuple[str, dict[str, Any]]]:
    """``[(id, kwargs)]`` from a list of entries or IFEval's id list + kwargs; raises ValueError."""
    if isinstance(value, dict) and "instruction_id_list" in value:
        ids = value["instruction_id_list"]
        kwargs = value.get("kwargs") or [{} for _ in ids]
        if not isinstance(ids, list) or not isinstance(kwargs, list) or len(kwargs) != len(ids):
            raise ValueError("instruction_id_list and kwargs must be lists of the same length")
        # IFEval's HF copy fills unused kwargs with null: drop them, as the reference harness does
        return [(i, {k: v for k, v in (kw or {}).items() if v is not None}) for i, kw in zip(ids, kwargs)]
    if not isinstance(value, list):
        raise ValueError("constraints must be a list of {id: ..., ...} entries")
    out = []
    for n, entry in enumerate(value):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ValueError(f"constraints[{n}] must be an object with an 'id'", (n,))
        kwargs = entry.get("kwargs") if isinstance(entry.get("kwargs"), dict) else {
            k: v for k, v in entry.items() if k != "id"}
        out.append((entry["id"], kwargs))
    return out


def _check_at_load(grader: ConstraintsGrader) -> None:
    if isinstance(grader.constraints, str):
        return  # a template: checked per item when grading
    try:
        entries = normalize_constraints(grader.constraints)
    except ValueError as exc:
        where = exc.args[1] if len(exc.args) > 1 else ()
        raise ValueError(exc.args[0], ("constraints",) + where) from None
    for n, (cid, kwargs) in enumerate(entries):
        try:
            get_constraint(cid)
            parse_params(cid, kwargs)
        except KeyError as exc:
            raise ValueError(str(exc.args[0]), ("constraints", n, "id")) from None
        except ValueError as exc:
            raise ValueError(str(exc), ("constraints", n)) from None


register_grader_check("constraints", _check_at_load)


@register_grader("constraints")
async def grade_constraints(grader: ConstraintsGrader, sample: dict, item: dict,
                            context: GradingContext) -> GradeResult:
    """1/0 (``score: all``) or the fraction of constraints that hold (``score: fraction``)."""
    ctx = {"item": item, "sample": sample}
    response = render(grader.input, ctx)
    raw = render_value(grader.constraints, ctx) if isinstance(grader.constraints, str) else grader.constraints
    try:
        entries = normalize_constraints(raw)
        verdicts = []
        for cid, kwargs in entries:
            ok, why = check_constraint(cid, response, kwargs, loose=grader.mode == "loose", item=item)
            verdicts.append({"id": cid, "kwargs": kwargs, "passed": ok, "explanation": why})
    except (KeyError, ValueError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        return GradeResult(score=0.0, errors={"other_error": True}, details={"error": str(message)})
    passed = sum(v["passed"] for v in verdicts)
    if grader.score == "fraction":
        score = passed / len(verdicts) if verdicts else 1.0
    else:
        score = 1.0 if passed == len(verdicts) else 0.0
    return GradeResult(score=score, details={"constraints": verdicts})
