"""``mrcr`` and ``graphwalks`` (gradeloop grader types): the published scoring of OpenAI-MRCR and
Graphwalks, usable in any eval.

```yaml
- type: mrcr
  name: MRCR
  input: "{{ sample.output_text }}"                              # the default
  answer: "{{ item.answer }}"
  random_string_to_prepend: "{{ item.random_string_to_prepend }}"
- type: graphwalks
  name: Graphwalks F1
  input: "{{ sample.output_text }}"                              # the default
  answer_nodes: "{{ item.answer_nodes }}"                        # a template naming a list, or a list
  mode: corrected                                                # or card
```

MRCR (the openai/mrcr card): 0 unless the response starts with the random string; otherwise
difflib's ``SequenceMatcher(None, response, answer).ratio()`` with the string removed from the
start of both.

Graphwalks (the openai/graphwalks card): the list on the last line after ``Final Answer:``, and
set F1 against the answer nodes. ``mode: card`` runs the card's code as published:
the last line is ``response.split("\\n")[-1]`` (a trailing newline leaves it empty: no answer),
the match ``Final Answer: ?\\[.*\\]`` is stripped of brackets only at its ends, so the first
element keeps ``Final Answer: [`` (it never matches a node, and an empty list reads as one
element), and an F1 whose precision and recall are both 0 is 1. An unparsed answer scores 0.
``mode: corrected`` (the default) reads the last non-blank line, takes the items between the
brackets after ``Final Answer:``, strips spaces and quotes, scores F1 0 when nothing overlaps,
and 1 only when both sets are empty. ``details`` holds the parsed nodes, precision and recall.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

from ..spec import GraderModel, register_grader_model
from ..templating import render, render_value
from ._base import GradeResult, GradingContext, register_grader

__all__ = ["MRCRGrader", "GraphwalksGrader", "mrcr_score", "graphwalks_nodes", "graphwalks_f1"]


@register_grader_model
class MRCRGrader(GraderModel):
    """The published OpenAI-MRCR rule as a grader (see the module docstring)."""

    type: Literal["mrcr"]
    input: str = "{{ sample.output_text }}"
    answer: str = "{{ item.answer }}"
    random_string_to_prepend: str = "{{ item.random_string_to_prepend }}"
    pass_threshold: float | None = None


@register_grader_model
class GraphwalksGrader(GraderModel):
    """Graphwalks answer extraction and set F1 as a grader (see the module docstring)."""

    type: Literal["graphwalks"]
    input: str = "{{ sample.output_text }}"
    answer_nodes: str | list[str] = "{{ item.answer_nodes }}"
    mode: Literal["corrected", "card"] = "corrected"
    pass_threshold: float | None = None


def mrcr_score(response: str, answer: str, random_string_to_prepend: str) -> float:
    """The card's ``grade``: 0 without the prefix, else the SequenceMatcher ratio of the rest."""
    if not response.startswith(random_string_to_prepend):
        return 0.0
    response = response.removeprefix(random_string_to_prepend)
    answer = answer.removeprefix(random_string_to_prepend)
    return float(difflib.SequenceMatcher(None, response, answer).ratio())


_CARD_LIST = re.compile(r"Final Answer: ?\[.*\]")
_LIST = re.compile(r"Final Answer:\s*\[(.*)\]")


def graphwalks_nodes(response: str, mode: str = "corrected") -> tuple[list[str], bool]:
    """``(nodes, failed_to_parse)`` from the response's last line, the card's way or corrected."""
    if mode == "card":
        line = response.split("\n")[-1]
        if "Final Answer:" not in line:
            return [], True
        found = _CARD_LIST.search(line)
        if not found:
            return [], True
        return [item.strip() for item in found.group(0).strip("[]").split(",") if item.strip()], False
    lines = [line for line in response.splitlines() if line.strip()]
    found = _LIST.search(lines[-1]) if lines else None
    if not found:
        return [], True
    items = (item.strip().strip("'\"`").strip() for item in found.group(1).split(","))
    return [item for item in items if item], False


def graphwalks_f1(response: str, answer_nodes: list[str], mode: str = "corrected") -> tuple[float, dict[str, Any]]:
    """Set F1 of the parsed nodes against ``answer_nodes`` and the details (nodes, precision, recall)."""
    nodes, failed = graphwalks_nodes(response, mode)
    sampled, truth = set(nodes), set(answer_nodes)
    if failed:
        return 0.0, {"parsed": False, "nodes": [], "precision": 0.0, "recall": 0.0}
    overlap = len(sampled & truth)
    recall = overlap / len(truth) if truth else 0.0
    precision = overlap / len(sampled) if sampled else 0.0
    if recall + precision > 0:
        f1 = 2 * recall * precision / (recall + precision)
    elif mode == "card":
        f1 = 1.0  # the card's `else 1`
    else:
        f1 = 1.0 if not truth and not sampled else 0.0
    return f1, {"parsed": True, "nodes": nodes, "precision": precision, "recall": recall}


@register_grader("mrcr")
async def grade_mrcr(grader: MRCRGrader, sample: dict, item: dict, context: GradingContext) -> GradeResult:
    """The MRCR ratio; ``details.prefix_found`` says whether the random string led the response."""
    ctx = {"item": item, "sample": sample}
    response, prefix = render(grader.input, ctx), render(grader.random_string_to_prepend, ctx)
    score = mrcr_score(response, render(grader.answer, ctx), prefix)
    return GradeResult(score=score, details={"prefix_found": response.startswith(prefix)})


@register_grader("graphwalks")
async def grade_graphwalks(grader: GraphwalksGrader, sample: dict, item: dict,
                           context: GradingContext) -> GradeResult:
    """Set F1 of the final-answer list; an answer list that is not a list of strings is an error."""
    ctx = {"item": item, "sample": sample}
    truth = render_value(grader.answer_nodes, ctx) if isinstance(grader.answer_nodes, str) else grader.answer_nodes
    if not isinstance(truth, list) or not all(isinstance(n, str) for n in truth):
        return GradeResult(score=0.0, errors={"invalid_variable_error": True},
                           details={"error": "answer_nodes must resolve to a list of node ids"})
    f1, details = graphwalks_f1(render(grader.input, ctx), truth, grader.mode)
    return GradeResult(score=f1, details=details)
