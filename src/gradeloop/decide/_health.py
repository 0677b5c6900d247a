"""Eval health across all runs of an eval: saturated, broken, flaky items and judge disagreement."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import NotFoundError
from ..store import Store

JUDGE_TYPES = ("score_model", "label_model")
SATURATION_WARNING = 0.8


@dataclass
class _Item:
    item: Any
    by_model: dict[str, list[int]] = field(default_factory=dict)  # 0/1 outcomes, every run and epoch
    greedy: dict[str, list[int]] = field(default_factory=dict)  # the same, temperature 0 only


@dataclass
class HealthReport:
    """What the runs of one eval say about its items. Lists hold ``{item, models: {model:
    [passed, samples]}}``; ``timeline`` has the saturated share per month of runs."""

    eval_name: str
    runs: list[dict[str, Any]]
    models: list[str]
    items: int
    saturated: list[dict[str, Any]]
    broken: list[dict[str, Any]]
    flaky: list[dict[str, Any]]
    judge_disagreements: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    warning: str | None
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The plain-data (JSON) form, ``object: gradeloop.eval_health``."""
        return {"object": "gradeloop.eval_health", **asdict(self)}


def _runs_named(store: Store, name: str) -> list[dict[str, Any]]:
    names: dict[str, str | None] = {}
    runs = []
    for run in store.list_runs(limit=1_000_000):
        if run["eval_id"] not in names:
            names[run["eval_id"]] = store.get_eval(run["eval_id"])["name"]
        if names[run["eval_id"]] == name and run["model"]:
            runs.append(run)
    if not runs:
        raise NotFoundError(f"no runs of a model on an eval named '{name}' (see: gradeloop eval list)")
    return sorted(runs, key=lambda r: r["created_at"])


def _month(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m")


def _collect(store: Store, runs: list[dict[str, Any]]) -> tuple[dict[str, dict[str, _Item]], list[dict[str, Any]]]:
    """Per run id, its items keyed by content; and the samples on which two judges disagree."""
    per_run: dict[str, dict[str, _Item]] = {}
    disagreements = []
    for run in runs:
        items = per_run.setdefault(run["id"], {})
        for o in store.output_items(run["id"]):
            if o["status"] == "error":
                continue
            key = json.dumps(o["item"], sort_keys=True, default=str)
            entry = items.setdefault(key, _Item(o["item"]))
            outcome = int(o["status"] == "pass")
            entry.by_model.setdefault(run["model"], []).append(outcome)
            if ((o["sample"] or {}).get("params") or {}).get("temperature") == 0:
                entry.greedy.setdefault(run["model"], []).append(outcome)
            judges = {s["name"]: s["passed"] for s in o["scores"] if s["type"] in JUDGE_TYPES and s["passed"] is not None}
            if len(set(judges.values())) > 1:
                disagreements.append({"run_id": run["id"], "model": run["model"], "item": o["item"],
                                      "epoch": o["epoch"], "judges": judges})
    return per_run, disagreements


def _merge(per_run: dict[str, dict[str, _Item]], run_ids: list[str]) -> dict[str, _Item]:
    merged: dict[str, _Item] = {}
    for rid in run_ids:
        for key, entry in per_run[rid].items():
            into = merged.setdefault(key, _Item(entry.item))
            for target, source in ((into.by_model, entry.by_model), (into.greedy, entry.greedy)):
                for model, outcomes in source.items():
                    target.setdefault(model, []).extend(outcomes)
    return merged


def _saturated(entry: _Item) -> bool:
    return len(entry.by_model) >= 2 and all(all(o) for o in entry.by_model.values())


def _row(entry: _Item, outcomes: dict[str, list[int]] | None = None) -> dict[str, Any]:
    return {"item": entry.item, "models": {m: [sum(o), len(o)] for m, o in (outcomes or entry.by_model).items()}}


def _share(items: dict[str, _Item]) -> tuple[int, float | None]:
    compared = [e for e in items.values() if len(e.by_model) >= 2]
    return len(compared), (sum(_saturated(e) for e in compared) / len(compared) if compared else None)


def _timeline(per_run: dict[str, dict[str, _Item]], runs: list[dict[str, Any]],
              threshold: float) -> tuple[list[dict[str, Any]], str | None]:
    months = sorted({_month(r["created_at"]) for r in runs})
    timeline = []
    for month in months:
        ids = [r["id"] for r in runs if _month(r["created_at"]) == month]
        n, share = _share(_merge(per_run, ids))
        timeline.append({"month": month, "runs": len(ids), "models": len({r["model"] for r in runs if r["id"] in ids}),
                         "items_compared": n, "saturated_share": share})
    for month in months:  # the earliest month from which on the eval stays saturated
        n, share = _share(_merge(per_run, [r["id"] for r in runs if _month(r["created_at"]) >= month]))
        if share is not None and share >= threshold:
            return timeline, (f"{round(100 * share)}% of items pass on every model since {month}: the eval is "
                              "saturating; add harder items")
    return timeline, None


def health(store: Store, eval_name: str, *, saturation_warning: float = SATURATION_WARNING) -> HealthReport:
    """Across every run of the evals named ``eval_name`` (items matched by content): items every
    model passes (saturated; needs two models), items no model passes (broken or mislabeled?),
    items whose verdict differs between samples of one model at temperature 0 (flaky), samples
    on which two model graders disagree, the saturated share per month, and a warning when the
    share of saturated items since some month is ``saturation_warning`` or more."""
    runs = _runs_named(store, eval_name)
    per_run, disagreements = _collect(store, runs)
    merged = _merge(per_run, [r["id"] for r in runs])
    models = sorted({r["model"] for r in runs})
    compared = [e for e in merged.values() if len(e.by_model) >= 2]
    timeline, warning = _timeline(per_run, runs, saturation_warning)
    notes = [] if len(models) >= 2 else ["one model only: saturated and broken items need runs of two models or more"]
    return HealthReport(
        eval_name,
        [{"run_id": r["id"], "model": r["model"], "created_at": r["created_at"], "items": len(per_run[r["id"]])}
         for r in runs],
        models, len(merged),
        [_row(e) for e in compared if _saturated(e)],
        [_row(e) for e in compared if not any(any(o) for o in e.by_model.values())],
        [_row(e, {m: o for m, o in e.greedy.items() if 0 < sum(o) < len(o)}) for e in merged.values()
         if any(0 < sum(o) < len(o) for o in e.greedy.values())],
        disagreements, timeline, warning, notes)
