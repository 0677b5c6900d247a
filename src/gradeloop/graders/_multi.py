"""``multi``: grade with every sub-grader, then combine their scores with ``calculate_output``."""

from __future__ import annotations

import asyncio

from ..spec import FormulaError, FormulaMathError, MultiGrader
from ._base import GradeResult, GradingContext, grade, register_grader


@register_grader("multi")
async def grade_multi(grader: MultiGrader, sample: dict, item: dict, context: GradingContext) -> GradeResult:
    """The formula's value over the sub-graders' scores; each sub-score is in ``sub_rewards``.

    Error flags of the sub-graders carry over. A formula that does not parse scores 0 with
    ``formula_parse_error``; one that is undefined for these scores (division by zero, log of
    0, …) scores 0 with ``other_error``.
    """
    subs = grader.sub_graders()
    results = await asyncio.gather(*(grade(sub, sample, item, context) for sub in subs.values()))
    scores = {key: r.score for key, r in zip(subs, results)}
    errors: dict = {}
    usage: dict[str, int] = {}
    per_model: dict[str, dict] = {}
    for r in results:
        errors.update({k: v for k, v in r.errors.items() if v})
        for k, v in r.token_usage.items():
            usage[k] = usage.get(k, 0) + v
        for model, counts in r.details.get("token_usage_per_model", {}).items():
            slot = per_model.setdefault(model, {})
            for k, v in counts.items():
                slot[k] = slot.get(k, 0) + v
    details = {"scores": scores, "token_usage_per_model": per_model,
               "sub_results": {key: {"score": r.score, "passed": r.passed,
                                     "errors": {k: v for k, v in r.errors.items() if v}}
                               for key, r in zip(subs, results)}}
    try:
        reward = grader.formula().evaluate(scores)
    except FormulaError as exc:
        errors["formula_parse_error"] = True
        details["error"] = str(exc)
        reward = 0.0
    except FormulaMathError as exc:
        errors["other_error"] = True
        details["error"] = str(exc)
        reward = 0.0
    infrastructure = any(r.infrastructure_error for r in results)
    result = GradeResult(score=reward, errors=errors, details=details, sub_rewards=scores, token_usage=usage)
    if infrastructure:
        result.passed = None
    return result
