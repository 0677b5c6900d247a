"""``string_check``: exact or containment comparison of two rendered templates."""

from __future__ import annotations

from ..spec import StringCheckGrader
from ..templating import render
from ._base import GradeResult, GradingContext, register_grader


@register_grader("string_check")
async def grade_string_check(grader: StringCheckGrader, sample: dict, item: dict,
                             context: GradingContext) -> GradeResult:
    """1 when the comparison holds, else 0."""
    ctx = {"item": item, "sample": sample}
    value = render(grader.input, ctx)
    reference = render(grader.reference, ctx)
    op = grader.operation
    if op == "eq":
        ok = value == reference
    elif op == "ne":
        ok = value != reference
    elif op == "like":
        ok = reference in value
    else:  # ilike
        ok = reference.casefold() in value.casefold()
    return GradeResult(score=1.0 if ok else 0.0)
