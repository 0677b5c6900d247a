"""Training files from evals: SFT from graded samples ("models improving models"), DPO from
passing vs failing samples of the same item, RFT from an eval's items and its grader."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import InputError, TemplateError
from ..report import output_item_objects
from ..spec import CompletionsDataSource, load_eval
from ..store import Store

__all__ = ["sft_rows", "dpo_rows", "rft_from_eval", "rft_grader", "write_jsonl"]


def _graded(store: Store, run_ids: Iterable[str]) -> Iterable[dict[str, Any]]:
    """Output items that carry a model's input and output (not errored, not given samples)."""
    for run_id in run_ids:
        for item in output_item_objects(store, run_id):
            sample = item["sample"] or {}
            if item["status"] == "error" or not sample.get("input") or not sample.get("output"):
                continue
            yield item


def _assistant(sample: dict[str, Any]) -> dict[str, Any]:
    message = dict(sample["output"][0])
    out = {"role": "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        out["tool_calls"] = message["tool_calls"]
    return out


def sft_rows(store: Store, run_ids: list[str], *, passing_only: bool = False) -> list[dict[str, Any]]:
    """``{"messages": prompt + [the model's answer]}`` per graded sample (only passing ones with
    ``passing_only``), duplicates dropped."""
    rows, seen = [], set()
    for item in _graded(store, run_ids):
        if passing_only and item["status"] != "pass":
            continue
        row = {"messages": list(item["sample"]["input"]) + [_assistant(item["sample"])]}
        key = json.dumps(row, sort_keys=True)
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return rows


def _mean_score(item: dict[str, Any]) -> float:
    scores = [r["score"] for r in item["results"] if r["score"] is not None]
    return sum(scores) / len(scores) if scores else 0.0


def dpo_rows(store: Store, run_ids: list[str]) -> list[dict[str, Any]]:
    """One DPO row per prompt that has both a passing and a failing sample (across epochs, runs
    or models): the best-scoring pass is preferred to the worst-scoring failure."""
    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for item in _graded(store, run_ids):
        by_prompt.setdefault(json.dumps(item["sample"]["input"], sort_keys=True), []).append(item)
    rows = []
    for items in by_prompt.values():
        passing = sorted((i for i in items if i["status"] == "pass"), key=_mean_score, reverse=True)
        failing = sorted((i for i in items if i["status"] == "fail"), key=_mean_score)
        for good in passing:
            bad = next((b for b in failing if _assistant(b["sample"]) != _assistant(good["sample"])), None)
            if bad is not None:
                rows.append({"input": {"messages": list(good["sample"]["input"])},
                             "preferred_output": [_assistant(good["sample"])],
                             "non_preferred_output": [_assistant(bad["sample"])]})
                break
    return rows


def _key(name: str, taken: set[str]) -> str:
    key = re.sub(r"\W+", "_", name).strip("_").lower() or "grader"
    if key[0].isdigit():
        key = f"g_{key}"
    base, n = key, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    taken.add(key)
    return key


def rft_from_eval(path: str | Path, *,
                  allow_outside_paths: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """RFT rows ``{"messages": the eval's prompt, **item fields}`` and the grader (the eval's one
    criterion, or a ``multi`` averaging them). Raises InputError when the eval has no prompts
    (``allow_outside_paths`` as in :func:`~gradeloop.spec.load_eval`)."""
    from ..runner._messages import build_messages

    spec = load_eval(path, allow_outside_paths=allow_outside_paths)
    source = spec.data_source
    if not isinstance(source, CompletionsDataSource) or source.input_messages is None:
        raise InputError("RFT rows need the prompts of a completions data source with input_messages",
                         file=str(path), field="data_source")
    rows = []
    for row in spec.rows:
        try:
            messages = build_messages(source.input_messages, row.item)
        except TemplateError as exc:
            raise InputError(exc.message, file=row.file, line=row.line, field="item") from None
        if "tools" in row.item or ("messages" in row.item and row.item["messages"] != messages):
            raise InputError("an RFT row reserves 'messages' and 'tools'; rename these item fields",
                             file=row.file, line=row.line, field="item")
        rows.append({"messages": messages, **{k: v for k, v in row.item.items() if k != "messages"}})
    return rows, rft_grader([c.model_dump(exclude_none=True) for c in spec.testing_criteria], spec.name)


def rft_grader(criteria: list[dict[str, Any]], name: str | None) -> dict[str, Any]:
    """The RFT grader for an eval's criteria: the one criterion, or a ``multi`` grader that
    averages them."""
    if len(criteria) == 1:
        return criteria[0]
    taken: set[str] = set()
    graders = {_key(c["name"], taken): c for c in criteria}
    formula = f"({' + '.join(graders)}) / {len(graders)}"
    return {"type": "multi", "name": name, "graders": graders, "calculate_output": formula}


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> int:
    """Write rows as JSONL; returns how many."""
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)
