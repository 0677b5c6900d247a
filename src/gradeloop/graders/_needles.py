"""``needles`` and ``grounding`` (gradeloop grader types) for the long-context suites.

```yaml
- type: needles                      # RULER's string-match metrics
  name: all found
  input: "{{ sample.output_text }}"
  references: "{{ item.answer }}"    # a list of strings, or a template naming one
  score: all                         # the share found, passing when all are; or any: 1 when one is
```

```yaml
- type: grounding                    # counterfactual grounding (see suites/grounding.py)
  name: answers from the documents
  input: "{{ sample.output_text }}"
  answer: "{{ item.answer }}"        # the in-context answer ("" when the question is unanswerable)
  world: "{{ item.world }}"          # the world-knowledge answer
  fallback: "{{ item.fallback }}"    # the phrase for unanswerable questions
```

Both compare case-insensitively by containment after collapsing whitespace.
``grounding`` passes a faithful answer (the in-context value and not the world's) or, for an
unanswerable question, the fallback phrase; ``details.rates`` holds 1/0 for ``faithful``,
``memorized`` (answerable questions) and ``confident_unanswerable`` (unanswerable ones), which
``eval show`` averages into rates.
"""

from __future__ import annotations

from typing import Any, Literal

from ..spec import GraderModel, register_grader_model
from ..templating import render, render_value
from ._base import GradeResult, GradingContext, register_grader


@register_grader_model
class NeedlesGrader(GraderModel):
    """Expected strings found in the response (see the module docstring)."""

    type: Literal["needles"]
    input: str = "{{ sample.output_text }}"
    references: list[str] | str
    score: Literal["all", "any"] = "all"


@register_grader_model
class GroundingGrader(GraderModel):
    """Context-faithful answers and fallbacks (see the module docstring)."""

    type: Literal["grounding"]
    input: str = "{{ sample.output_text }}"
    answer: str = "{{ item.answer }}"
    world: str = "{{ item.world }}"
    fallback: str = "{{ item.fallback }}"


def _norm(text: str) -> str:
    return " ".join(str(text).lower().split())


def contains(response: str, needle: str) -> bool:
    """Whether ``needle`` occurs in ``response``, ignoring case and runs of whitespace."""
    return bool(_norm(needle)) and _norm(needle) in _norm(response)


def needles_score(response: str, references: list[str], mode: str = "all") -> tuple[float, list[str]]:
    """RULER's string match: the share of ``references`` found (``all``) or 1/0 for any found
    (``any``); and the references found."""
    found = [r for r in references if contains(response, r)]
    if not references:
        return 1.0, []
    return (len(found) / len(references) if mode == "all" else float(bool(found))), found


@register_grader("needles")
async def grade_needles(grader: NeedlesGrader, sample: dict, item: dict, context: GradingContext) -> GradeResult:
    """The share of expected strings found (``all``; passes at 1) or 1/0 (``any``)."""
    ctx = {"item": item, "sample": sample}
    response = render(grader.input, ctx)
    refs = render_value(grader.references, ctx) if isinstance(grader.references, str) else grader.references
    if not isinstance(refs, list):
        return GradeResult(score=0.0, errors={"invalid_variable_error": True},
                           details={"error": "references must be a list of strings"})
    refs = [str(r) for r in refs]
    score, found = needles_score(response, refs, grader.score)
    return GradeResult(score=score, details={"found": found, "missing": [r for r in refs if r not in found]})


def grounding_verdict(response: str, answer: str, world: str, fallback: str) -> dict[str, Any]:
    """``{"passed", "rates": {...}}`` for one response (see the module docstring)."""
    if not answer:  # unanswerable: the fallback is the right answer
        abstained = contains(response, fallback)
        return {"passed": abstained, "rates": {"confident_unanswerable": int(not abstained)}}
    faithful, memorized = contains(response, answer), contains(response, world)
    return {"passed": faithful and not memorized, "rates": {"faithful": int(faithful), "memorized": int(memorized)}}


@register_grader("grounding")
async def grade_grounding(grader: GroundingGrader, sample: dict, item: dict, context: GradingContext) -> GradeResult:
    """1 for a context-faithful answer (or the fallback to an unanswerable question), else 0."""
    ctx = {"item": item, "sample": sample}
    verdict = grounding_verdict(render(grader.input, ctx), render(grader.answer, ctx), render(grader.world, ctx),
                                render(grader.fallback, ctx))
    return GradeResult(score=float(verdict["passed"]), passed=verdict["passed"], details=verdict)
