"""Runs of the same items side by side: items matched by content (as
:func:`gradeloop.report.compare_runs` matches them), flipped items first, with the paired
statistics of :func:`gradeloop.decide.compare_many`."""

from __future__ import annotations

import json
from typing import Any

from ..errors import InputError
from ..store import Store
from ._data import output_text

MAX_RUNS = 4


def _per_item(store: Store, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
    """Per item (content and occurrence): its index, 0/1 outcomes and first output."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    seen: dict[str, int] = {}
    keys: dict[int, tuple[str, int]] = {}
    for o in store.output_items(run_id):
        if o["index"] not in keys:
            text = json.dumps(o["item"], sort_keys=True, default=str)
            keys[o["index"]] = (text, seen.get(text, 0))
            seen[text] = seen.get(text, 0) + 1
        entry = out.setdefault(keys[o["index"]], {"index": o["index"], "item": o["item"], "outcomes": [],
                                                   "status": [], "output": output_text(o["sample"])})
        entry["status"].append(o["status"])
        if o["status"] != "error":
            entry["outcomes"].append(int(o["status"] == "pass"))
    return out


def _verdict(entry: dict[str, Any] | None) -> float | None:
    if not entry or not entry["outcomes"]:
        return None
    return sum(entry["outcomes"]) / len(entry["outcomes"])


def side_by_side(store: Store, run_ids: list[str], *, limit: int | None = 500) -> dict[str, Any]:
    """The items of 2–4 runs matched by content, flipped ones (whose pass rate differs between
    runs) first: ``{runs, rows: [{item, flipped, cells: [{index, pass_rate, status, output}]}],
    flipped, shared}``. ``limit`` caps the rows (flipped rows come first, so they stay)."""
    if not 2 <= len(run_ids) <= MAX_RUNS:
        raise InputError(f"give 2 to {MAX_RUNS} runs to compare, got {len(run_ids)}", field="run")
    ids = [store.resolve_run_id(r) for r in run_ids]
    per_run = [_per_item(store, r) for r in ids]
    shared = [k for k in per_run[0] if all(k in p for p in per_run[1:])]
    rows = []
    for key in shared:
        verdicts = [_verdict(p[key]) for p in per_run]
        known = [v for v in verdicts if v is not None]
        cells = [{"index": p[key]["index"], "pass_rate": v, "status": p[key]["status"], "output": p[key]["output"]}
                 for p, v in zip(per_run, verdicts)]
        rows.append({"item": per_run[0][key]["item"], "flipped": len(set(known)) > 1, "cells": cells})
    rows.sort(key=lambda r: not r["flipped"])  # stable: item order within each part
    runs = [{"run_id": r, "model": store.get_run(r)["model"] or None, "name": store.get_run(r)["name"]} for r in ids]
    return {"runs": runs, "shared": len(shared), "flipped": sum(r["flipped"] for r in rows),
            "rows": rows[:limit] if limit else rows, "truncated": bool(limit) and len(rows) > limit}


def compare_data(store: Store, run_ids: list[str], *, prices: Any = None, limit: int | None = 500) -> dict[str, Any]:
    """The compare page: every run after the first against the first (paired differences with
    intervals, Holm across criteria, cost) and the items side by side, flipped first."""
    from ..decide import compare_many

    data = side_by_side(store, run_ids, limit=limit)
    data["comparisons"] = compare_many(store, [r["run_id"] for r in data["runs"]], prices=prices)
    return {"object": "gradeloop.view.compare", **data}
