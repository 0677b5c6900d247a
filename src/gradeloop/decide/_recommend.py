"""The cheapest model that is not worse than a baseline by more than a margin."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..report import compare_runs
from ..stats import non_inferior
from ..store import Store
from ._prices import PriceTable, RunCost, load_prices, run_cost


@dataclass
class Candidate:
    """One candidate run against the baseline: its pass rate with interval, the paired
    difference (candidate − baseline) with its interval, cost, p95 latency, verdict and why."""

    run_id: str
    model: str | None
    pass_rate: dict[str, float | None]
    difference: dict[str, float | None]
    paired_items: int
    cost_per_1k_items: float | None
    latency_p95_ms: float | None
    verdict: str  # recommended | qualifies | inferior | too slow | no price
    reason: str
    cost: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recommendation:
    """The choice (or None), every candidate, and one plain sentence."""

    baseline: dict[str, Any]
    margin: float
    max_p95_latency_s: float | None
    confidence: float
    candidates: list[Candidate]
    recommended: dict[str, Any] | None
    closest: dict[str, Any] | None
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        """The plain-data (JSON) form, ``object: gradeloop.recommendation``."""
        return {"object": "gradeloop.recommendation", **asdict(self)}


def _points(value: float) -> str:
    return f"{100 * value:.1f}".replace("-", "−")


def _relative_cost(cost: float | None, base: float | None) -> str:
    if cost is None:
        return "cost unknown"
    if not base:
        return f"${cost:.4g} per 1,000 items"
    change = 1 - cost / base
    if abs(change) < 0.005:
        return "the same price"
    return f"{round(100 * change)}% cheaper" if change > 0 else f"{round(-100 * change)}% more expensive"


def _judge(cand: Candidate, margin: float, max_p95_s: float | None) -> Candidate:
    low = cand.difference["low"]
    if not non_inferior(low, margin):
        bound = "no paired items" if low is None else f"lower bound {_points(low)} points"
        cand.verdict, cand.reason = "inferior", f"may be worse by {_points(margin)} points or more ({bound})"
    elif max_p95_s is not None and (cand.latency_p95_ms is None or cand.latency_p95_ms > 1000 * max_p95_s):
        p95 = "unknown" if cand.latency_p95_ms is None else f"{cand.latency_p95_ms / 1000:.2f} s"
        cand.verdict, cand.reason = "too slow", f"p95 latency {p95} above {max_p95_s:g} s"
    elif cand.cost_per_1k_items is None:
        cand.verdict, cand.reason = "no price", f"no price for {cand.model} (give one with --prices)"
    else:
        cand.verdict = "qualifies"
        cand.reason = f"non-inferior (lower bound {_points(low)} > −{_points(margin)} points)"
    return cand


def _candidate(store: Store, baseline: str, run_id: str, cost: RunCost, confidence: float) -> Candidate:
    cmp = compare_runs(store, baseline, run_id, confidence=confidence)
    o = cmp["overall"]
    rate = {k: o["b"][k] for k in ("value", "low", "high")}
    diff = {"value": o["difference"], "low": o["low"], "high": o["high"]}
    return Candidate(cmp["b"]["run_id"], cmp["b"]["model"], rate, diff, o["paired_items"], cost.cost_per_1k_items,
                     cost.latency_p95_ms, "", "", cost.to_dict())


def recommend(store: Store, run_ids: list[str], *, baseline: str, margin: float = 0.02,
              prices: PriceTable | None = None, max_p95_latency_s: float | None = None,
              confidence: float = 0.95) -> Recommendation:
    """Among the runs other than ``baseline`` (all of the same items, matched by content), the
    cheapest whose paired interval of candidate − baseline has its lower bound above
    ``-margin`` and, with ``max_p95_latency_s``, whose p95 latency is within it. Cost is the
    sampled model's cost per 1,000 items (judges are the same for every run and left out).
    When none qualifies, ``recommended`` is None and ``closest`` names the candidate with the
    highest lower bound."""
    prices = prices or load_prices()
    base_id = store.resolve_run_id(baseline)
    ids = list(dict.fromkeys(store.resolve_run_id(r) for r in run_ids if store.resolve_run_id(r) != base_id))
    base_cost = run_cost(store, base_id, prices)
    base_run = store.get_run(base_id)
    cands = [_judge(_candidate(store, base_id, r, run_cost(store, r, prices), confidence), margin, max_p95_latency_s)
             for r in ids]
    ok = sorted((c for c in cands if c.verdict == "qualifies"), key=lambda c: c.cost_per_1k_items)
    base = {"run_id": base_id, "model": base_run["model"] or None, "cost_per_1k_items": base_cost.cost_per_1k_items,
            "latency_p95_ms": base_cost.latency_p95_ms, "cost": base_cost.to_dict()}
    choice = closest = None
    if ok:
        best = ok[0]
        best.verdict = "recommended"
        choice = {"model": best.model, "run_id": best.run_id, "cost_per_1k_items": best.cost_per_1k_items}
        sentence = (f"use {best.model}: not worse than {base['model']} by more than {_points(margin)} points "
                    f"(lower bound {_points(best.difference['low'])}), "
                    f"{_relative_cost(best.cost_per_1k_items, base['cost_per_1k_items'])}")
    else:
        scored = [c for c in cands if c.difference["low"] is not None]
        near = max(scored, key=lambda c: c.difference["low"], default=None)
        limit = f" with p95 latency under {max_p95_latency_s:g} s" if max_p95_latency_s is not None else ""
        sentence = f"no candidate is shown to be within {_points(margin)} points of {base['model']}{limit}"
        if near:
            closest = {"model": near.model, "run_id": near.run_id, "lower_bound": near.difference["low"],
                       "verdict": near.verdict}
            sentence += f"; closest: {near.model} ({near.reason})"
    return Recommendation(base, margin, max_p95_latency_s, confidence, cands, choice, closest, sentence)
