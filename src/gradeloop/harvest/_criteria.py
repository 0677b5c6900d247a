"""Criteria extraction: what a use case's own instructions and request parameters say an answer
must do, written as the ``testing_criteria`` of an eval (OpenAI grader JSON gradeloop runs).

- every constraint the constraint library's ``detect`` finds in the system-prompt template
  becomes a ``constraints`` criterion (the form the IFEval and IF-categories suites use), one
  per constraint so a run shows which instruction fails (one stated under a condition, "reply in
  JSON when asked for an itinerary", is left to the rubric); what a record's own system prompt
  states beyond the template (in a part the template masks: "under <*> words") goes into
  that item's ``constraints``, checked by one criterion over ``{{ item.constraints }}``;
- a ``json_schema`` ``response_format`` becomes a ``python`` grader that validates the answer
  with ``jsonschema`` (gradeloop has no schema grader type; the python grader is OpenAI's own
  way to run such a check); a ``json_object`` one becomes the library's JSON-format constraint;
- a required tool call (``tool_choice`` naming a function, or ``required`` where every good
  answer called the same tool first) becomes a ``string_check`` on
  ``{{ sample.output_tools[0].function.name }}``;
- the instructions no detector covered become a proposed ``score_model`` rubric, only when a
  judge model is given;
- outputs marked good become ``reference_answer`` item fields for a ``text_similarity``
  criterion (see :data:`SIMILARITY_METRIC`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Criteria", "ITEM_CONSTRAINTS", "SIMILARITY_METRIC", "SIMILARITY_THRESHOLD", "checkable_constraints",
           "detect_constraints", "extract_criteria", "good_outputs", "instruction_sentences", "reference_criterion",
           "response_schema", "required_tool", "system_text"]

# Cosine of MiniLM embeddings (the embedder gradeloop ships) against the answer a user marked
# good, passing at 0.7. Answers of one use case share boilerplate (a greeting, a required
# closing line), which lifts word-overlap metrics for answers about something else: against a
# shipping answer that ends "Is there anything else I can help with?", two rewordings scored
# ROUGE-L 0.78 / 0.55 and fuzzy_match 0.86 / 0.68, two answers about other requests with the same
# closing ROUGE-L 0.52 / 0.49 and fuzzy_match 0.70 / 0.71 (no threshold separates them); cosine
# gave 0.97 / 0.75 for the rewordings and 0.43 / 0.12 for the others
# (tests/test_harvest_build.py::test_the_reference_criterion_passes_a_rewording_not_another_answer).
SIMILARITY_METRIC = "cosine"
SIMILARITY_THRESHOLD = 0.7

_SCHEMA_SOURCE = '''import json

import jsonschema

SCHEMA = json.loads({schema!r})
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)


def grade(sample, item):
    """1 when the answer is JSON that matches the response_format schema, else 0."""
    try:
        value = json.loads(sample["output_text"])
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if any(True for _ in VALIDATOR.iter_errors(value)) else 1.0
'''


@dataclass
class Criteria:
    """The criteria found for one use case: ``testing_criteria`` (grader JSON), what each
    came from (``found``: ``{"name", "kind", "from"}``), per record id the constraints its own
    system prompt states beyond the template's (``item_constraints``, for ``item.constraints``),
    the instruction sentences no detector covered (``uncovered``) and ``notes`` for the build
    summary (e.g. "no judge: no rubric")."""

    testing_criteria: list[dict[str, Any]] = field(default_factory=list)
    found: list[dict[str, Any]] = field(default_factory=list)
    item_constraints: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    uncovered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, grader: dict[str, Any], kind: str, source: str) -> None:
        """Append a criterion, keeping names unique (a second one gets `` (2)``)."""
        names = {c["name"] for c in self.testing_criteria}
        name, n = grader["name"], 2
        while name in names:
            name, n = f"{grader['name']} ({n})", n + 1
        self.testing_criteria.append({**grader, "name": name})
        self.found.append({"name": name, "kind": kind, "from": source})


def detect_constraints(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``[(constraint id, kwargs)]`` for every registered constraint ``detect`` finds in ``text``."""
    from ..graders.constraints import constraint_ids, get_constraint

    found: list[tuple[str, dict[str, Any]]] = []
    for cid in constraint_ids():
        for params in get_constraint(cid).detect(text):
            found.append((cid, params.model_dump(exclude_none=True, mode="json")))
    return found


# an instruction under a condition ("reply in JSON when asked for an itinerary") holds for some
# requests only: checked on every item it would fail the others, so it goes to the rubric
_CONDITION = re.compile(r"\b(?:if|when|whenever|unless|in case|otherwise)\b", re.IGNORECASE)


def checkable_constraints(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The constraints :func:`detect_constraints` finds in ``text`` that hold for every request:
    those stated only in a conditional sentence (if, when, unless …) are left out."""
    found = detect_constraints(text)
    sentences = instruction_sentences(text)
    conditional = [c for s in sentences if _CONDITION.search(s) for c in detect_constraints(s)]
    if not conditional:
        return found
    plain = [c for s in sentences if not _CONDITION.search(s) for c in detect_constraints(s)]
    return [c for c in found if c not in conditional or c in plain]


def _describe(cid: str, kwargs: dict[str, Any]) -> str:
    """The constraint in the library's own words, its shortest phrasing (a criterion's name)."""
    from ..graders.constraints import get_constraint, parse_params

    constraint = get_constraint(cid)
    try:
        params = parse_params(cid, kwargs)
        return min((constraint.describe(params, n).strip() for n in range(constraint.phrasings)), key=len)
    except (NotImplementedError, ValueError):
        return cid


def system_text(messages: list[dict[str, Any]]) -> str:
    """The system and developer messages of a conversation: its instructions."""
    return "\n".join(m["content"] for m in messages
                     if m.get("role") in ("system", "developer") and isinstance(m.get("content"), str))


ITEM_CONSTRAINTS = {"type": "constraints", "name": "follows the constraints of its own system prompt",
                    "input": "{{ sample.output_text }}", "constraints": "{{ item.constraints }}", "mode": "strict",
                    "score": "all"}


def _own_constraints(out: Criteria, records: list[dict[str, Any]], common: list[tuple[str, dict[str, Any]]]) -> None:
    """Constraints a record's own system prompt states beyond the template's: the variable parts
    a template masks ("under <*> words") still say something checkable for that record."""
    cache: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for r in records:
        text = system_text(r.get("messages") or [])
        if text not in cache:
            cache[text] = [(cid, kw) for cid, kw in checkable_constraints(text) if (cid, kw) not in common]
    # stated by every record alike (the template masked a constant part): a criterion of its own
    everywhere = [c for c in next(iter(cache.values()), []) if all(c in found for found in cache.values())]
    for cid, kwargs in everywhere:
        out.add(constraint_criterion(cid, kwargs), "constraint", f"{cid} (every record's system prompt)")
    for r in records:
        own = [{"id": cid, **kw} for cid, kw in cache[system_text(r.get("messages") or [])]
               if (cid, kw) not in everywhere]
        if r.get("id"):
            out.item_constraints[r["id"]] = own
    with_own = sum(1 for v in out.item_constraints.values() if v)
    if with_own:
        out.add(dict(ITEM_CONSTRAINTS), "constraint", f"{with_own} record(s) whose system prompt states more")
    else:
        out.item_constraints = {}


def constraint_criterion(cid: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A ``constraints`` grader checking one constraint strictly, named by its description."""
    return {"type": "constraints", "name": _describe(cid, kwargs)[:120], "input": "{{ sample.output_text }}",
            "constraints": [{"id": cid, **kwargs}], "mode": "strict", "score": "all"}


def instruction_sentences(text: str) -> list[str]:
    """The sentences and list lines of a system prompt (what a rubric is built from)."""
    parts = re.split(r"(?<=[.!?])\s+|(?<=[.!?][\"'”’)])\s+|\n+", text)
    return [p.strip(" -*\t") for p in parts if len(p.strip(" -*\t").split()) >= 3]


def response_schema(params: dict[str, Any]) -> tuple[str, dict[str, Any] | None] | None:
    """What a record's params ask the answer's format to be: ``("json_schema", schema)``,
    ``("json_object", None)``, or None (Chat ``response_format`` or Responses ``text.format``)."""
    fmt = params.get("response_format")
    if not isinstance(fmt, dict):
        text = params.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            fmt = {"type": "json_schema", "json_schema": {k: v for k, v in fmt.items() if k != "type"}}
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        return ("json_schema", schema) if isinstance(schema, dict) and schema else ("json_object", None)
    return ("json_object", None) if fmt.get("type") == "json_object" else None


def good_outputs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records whose answer counts as good: feedback > 0 where any record has feedback
    that positive, else every answered record without an error or negative feedback."""
    answered = [r for r in records if r.get("output") and not r.get("error") and (r.get("status") or 200) < 400]
    marked = [r for r in answered if (r.get("feedback") or 0) > 0]
    return marked or [r for r in answered if (r.get("feedback") or 0) >= 0]


def _first_tool(output: dict[str, Any] | None) -> str | None:
    calls = (output or {}).get("tool_calls") or []
    return ((calls[0] or {}).get("function") or {}).get("name") if calls else None


def required_tool(records: list[dict[str, Any]]) -> tuple[str, str] | None:
    """``(function name, why)`` when the answer must call a tool: ``tool_choice`` names one in
    every record, or is ``required`` and every good answer called the same tool first."""
    choices = [r.get("params", {}).get("tool_choice") for r in records]
    named = {(c.get("function") or {}).get("name") or c.get("name") for c in choices if isinstance(c, dict)}
    if len(named) == 1 and all(isinstance(c, dict) for c in choices) and None not in named:
        return named.pop(), "tool_choice names it"
    if not choices or any(c != "required" for c in choices):
        return None
    first = Counter(_first_tool(r.get("output")) for r in good_outputs(records))
    if len(first) == 1 and None not in first:
        return next(iter(first)), "tool_choice is required and every good answer called it"
    return None


def reference_criterion() -> dict[str, Any]:
    """The ``text_similarity`` criterion against ``item.reference_answer`` (an answer marked good)."""
    return {"type": "text_similarity", "name": "close to the answer marked good", "input": "{{ sample.output_text }}",
            "reference": "{{ item.reference_answer }}", "evaluation_metric": SIMILARITY_METRIC,
            "pass_threshold": SIMILARITY_THRESHOLD}


def _rubric(judge: str, sentences: list[str]) -> dict[str, Any]:
    rubric = "\n".join(f"- {s}" for s in sentences)
    system = ("You grade an assistant's answer against the instructions its operator gave it. Instructions:\n"
              f"{rubric}\n\nScore 1 when the answer follows every instruction, 0 when it ignores them, "
              "and in between for partial adherence.")
    return {"type": "score_model", "name": "follows the other instructions (proposed rubric)", "model": judge,
            "input": [{"role": "system", "content": system},
                      {"role": "user", "content": "User's request:\n{{ item.messages[-1].content }}\n\n"
                                                  "Assistant's answer:\n{{ sample.output_text }}"}],
            "range": [0, 1], "pass_threshold": 0.5}


def extract_criteria(template: str, records: list[dict[str, Any]], *, judge: str | None = None) -> Criteria:
    """The criteria of one use case from its system-prompt ``template`` and its ``records``
    (store rows); ``judge`` (a model name) adds a ``score_model`` rubric for what no detector
    covered. Returns :class:`Criteria` (its ``testing_criteria`` may be empty)."""
    out = Criteria()
    common = checkable_constraints(template)
    for cid, kwargs in common:
        out.add(constraint_criterion(cid, kwargs), "constraint", cid)
    _own_constraints(out, records, common)
    _add_format(out, records)
    tool = required_tool(records)
    if tool:
        out.add({"type": "string_check", "name": f"calls {tool[0]}", "reference": tool[0], "operation": "eq",
                 "input": "{{ sample.output_tools[0].function.name }}"}, "tool", tool[1])
    out.uncovered = [s for s in instruction_sentences(template) if _CONDITION.search(s) or not detect_constraints(s)]
    if out.uncovered and judge:
        out.add(_rubric(judge, out.uncovered), "rubric", f"{len(out.uncovered)} instruction(s) no detector covered")
    elif out.uncovered:
        out.notes.append(f"{len(out.uncovered)} instruction(s) no detector covered; no judge given (--judge MODEL), "
                         "so no score_model rubric was written")
    return out


def _add_format(out: Criteria, records: list[dict[str, Any]]) -> None:
    formats = [response_schema(r.get("params") or {}) for r in records]
    if not formats or any(f is None for f in formats):
        return
    kinds = {json.dumps(f, sort_keys=True) for f in formats}
    kind, schema = formats[0] if len(kinds) == 1 else ("json_object", None)
    if kind == "json_schema":
        source = _SCHEMA_SOURCE.format(schema=json.dumps(schema, sort_keys=True))
        out.add({"type": "python", "name": "matches the response_format schema", "source": source,
                 "pass_threshold": 1}, "schema", "response_format json_schema")
    elif not any(c["constraints"][0]["id"] == "detectable_format:json_format"
                 for c in out.testing_criteria if c["type"] == "constraints"):
        out.add(constraint_criterion("detectable_format:json_format", {}), "constraint", "response_format json_object")
