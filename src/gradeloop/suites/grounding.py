"""Counterfactual grounding: answer from the documents, not from memory, or say you cannot.

GPT-4.1's users asked for models that answer only from the context they are given. This suite
tests that with documents that state facts contradicting world knowledge (a different capital,
a shifted year, a changed quantity, another author; from the table in ``_facts``) and a question
about one of them: the right answer is the in-context value. One item in four asks about a fact
no document states; its right answer is the fallback phrase (default "I don't know based on the
documents").

Items carry ``kind`` (``answerable`` / ``unanswerable``), ``category`` (capital, year, quantity,
author), ``answer`` (the in-context value; empty when unanswerable), ``world`` (the true value),
``fallback``, ``layout`` and ``placement``. The ``grounding`` grader passes a faithful answer or
the fallback; its ``details.rates`` give the context-faithful rate, the memorization rate (the
true value appears) and the rate of confident answers to unanswerable questions, which ``eval
show`` prints as rates (and ``--by kind --by category --by layout --by placement`` breaks down).
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._facts import facts
from ._filler import sentences
from ._layout import Doc, compose
from ._long import write_eval

__all__ = ["FALLBACK", "generate", "build", "eval_definition", "counterfactual", "statement", "question"]

FALLBACK = "I don't know based on the documents"
SUITE_VERSION = 1
_DOCS = 4


def counterfactual(rng: random.Random, fact: dict[str, Any]) -> str:
    """A plausible value for ``fact`` that differs from the true one (neither contains the other)."""
    true = str(fact["value"])
    for _ in range(50):
        if fact["alternatives"]:
            value = rng.choice(fact["alternatives"])
        elif fact["kind"] == "year":
            value = str(int(true) + rng.choice([-1, 1]) * rng.randint(3, 40))
        else:
            number = int(true)
            scaled = round(number * rng.choice([0.6, 0.75, 1.3, 1.5]))
            value = str(number + rng.randint(1, 3) if number < 12 else scaled)
        if true.lower() not in value.lower() and value.lower() not in true.lower():
            return value
    raise AssertionError(f"no counterfactual for {fact['subject']}")


def statement(fact: dict[str, Any], value: str) -> str:
    """The sentence a document states ``fact`` with."""
    kind, subject, unit = fact["kind"], fact["subject"], fact["unit"]
    if kind == "capital":
        return f"The capital of {subject} is {value}."
    if kind == "year":
        return f"{subject[0].upper() + subject[1:]} took place in {value}."
    if kind == "quantity":
        return f"{subject[0].upper() + subject[1:]} is {value}{' ' + unit if unit else ''}."
    return f"{subject} was written by {value}."


def question(fact: dict[str, Any]) -> str:
    """The question asking for ``fact``."""
    kind, subject = fact["kind"], fact["subject"]
    return {"capital": f"What is the capital of {subject}?", "year": f"In what year did {subject} take place?",
            "quantity": f"What is {subject}?", "author": f"Who wrote {subject}?"}[kind]


def _title(fact: dict[str, Any]) -> str:
    return {"capital": "Atlas notes", "year": "Chronicle", "quantity": "Reference figures",
            "author": "Library catalogue"}[fact["kind"]] + f": {fact['subject']}"


def _document(rng: random.Random, index: int, fact: dict[str, Any], value: str) -> Doc:
    before, after = sentences(rng, 2), sentences(rng, 2)
    return Doc(str(index), _title(fact), " ".join([*before, statement(fact, value), *after]))


def _instructions(fallback: str, ask: str) -> str:
    return ("Answer the question using only the documents given here, even where they contradict what you believe "
            "to be true. Answer briefly. If the documents do not contain the answer, reply exactly: "
            f'"{fallback}".\n\nQuestion: {ask}')


def _draft(index: int, seed: int, table: list[dict[str, Any]]) -> dict[str, Any]:
    rng = random.Random(f"grounding:{seed}:{index}")
    chosen = rng.sample(table, _DOCS + 1)
    answerable = index % 4 != 3
    target, shown = (chosen[0], chosen[:_DOCS]) if answerable else (chosen[_DOCS], chosen[:_DOCS])
    values = [counterfactual(rng, f) for f in shown]
    docs = [_document(rng, i + 1, f, v) for i, (f, v) in enumerate(zip(shown, values))]
    rng.shuffle(docs)
    return {"fact": target, "answer": values[0] if answerable else "", "docs": docs,
            "kind": "answerable" if answerable else "unanswerable"}


def generate(n: int, seed: int = 0, layouts: list[str] | None = None, placements: list[str] | None = None,
             fallback: str = FALLBACK) -> list[dict[str, Any]]:
    """``n`` items (one in four unanswerable), each once per layout and placement (defaults:
    ``xml``, ``start``); same arguments, same items."""
    if n < 1:
        raise InputError("n must be at least 1", field="n")
    if not fallback.strip():
        raise InputError("the fallback phrase must not be empty", field="fallback")
    table, rows = facts(), []
    for index in range(n):
        draft = _draft(index, seed, table)
        fact, stem = draft["fact"], f"ground-{index:04d}"
        for layout in layouts or ["xml"]:
            for placement in placements or ["start"]:
                text = compose(_instructions(fallback, question(fact)), draft["docs"], layout, placement)
                rows.append({"id": f"{stem}.{layout}.{placement}", "stem": stem, "kind": draft["kind"],
                             "category": fact["kind"], "answer": draft["answer"], "world": fact["value"],
                             "fallback": fallback, "layout": layout, "placement": placement,
                             "messages": [{"role": "user", "content": text}]})
    return rows


_ITEM_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "kind": {"type": "string", "enum": ["answerable", "unanswerable"]},
        "category": {"type": "string"}, "answer": {"type": "string"}, "world": {"type": "string"},
        "fallback": {"type": "string"}, "layout": {"type": "string"}, "placement": {"type": "string"},
        "messages": {"type": "array", "minItems": 1},
    },
    "required": ["id", "kind", "answer", "world", "fallback", "messages"],
}


def eval_definition(meta: dict[str, Any]) -> dict[str, Any]:
    """The eval definition ``build`` writes next to ``rows.jsonl``."""
    return {
        "name": f"Counterfactual grounding (n={meta['n']}, seed={meta['seed']})",
        "metadata": {"suite": "grounding", "version": SUITE_VERSION, **meta,
                     "description": "Answer from documents that contradict world knowledge; fall back when "
                                    "the documents do not say."},
        "data_source_config": {"type": "custom", "item_schema": _ITEM_SCHEMA, "include_sample_schema": True},
        "testing_criteria": [{"type": "grounding", "name": "answers from the documents",
                              "input": "{{ sample.output_text }}", "answer": "{{ item.answer }}",
                              "world": "{{ item.world }}", "fallback": "{{ item.fallback }}"}],
        "data_source": {"type": "completions", "source": {"type": "file", "path": "rows.jsonl"},
                        "input_messages": {"type": "item_reference", "item_reference": "item.messages"},
                        "sampling_params": {"temperature": 0, "max_completion_tokens": 64}},
    }


def build(n: int, seed: int, out_dir: str | Path, *, layouts: list[str] | None = None,
          placements: list[str] | None = None, fallback: str = FALLBACK) -> dict[str, Any]:
    """Write ``out_dir/eval.yaml`` and ``out_dir/rows.jsonl``. Returns ``{"eval", "rows", "items",
    "counts": {"kind", "category", "layout", "placement"}}``."""
    items = generate(n, seed, layouts, placements, fallback)
    meta = {"n": n, "seed": seed, "layouts": layouts or ["xml"], "placements": placements or ["start"],
            "fallback": fallback}
    written = write_eval(out_dir, eval_definition(meta), items,
                         "# Built by `gradeloop suite grounding build`; rows are in rows.jsonl.\n")
    counts = {k: dict(Counter(i[k] for i in items)) for k in ("kind", "category", "layout", "placement")}
    return {**written, "counts": counts}
