"""Metrics over a run's agent episodes: pure functions of the stored trajectories and pass/fail.

An *episode record* is a dict ``{"index", "epoch", "item", "passed", "trajectory"}``:
``passed`` is True/False for a graded episode and None for an errored one (left out of every
metric), ``trajectory`` the stored trajectory (see docs/agents.md). The definitions, with the
reasons for them, are in docs/agents-metrics.md:

* pass@k and pass^k per item and per group (:func:`consistency`), τ-bench's estimators;
* success with and without injected faults, overall and on the same items (:func:`fault_success`);
* recovery and gave-up rates after a failed tool call (:func:`after_failure`, :func:`grit`);
* clarification precision and recall against an item field (:func:`clarification`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..stats import pass_at_k, pass_hat_k
from ..templating import field_at

__all__ = ["STANDARD_KS", "k_values", "pass_k", "consistency", "fault_count", "fault_success", "after_failure",
           "grit", "is_truthy", "clarification", "episode_stats", "agent_metrics"]

_ABSENT = object()  # what field_at gives for an item without the field

STANDARD_KS = (1, 2, 5, 10, 20, 50, 100)


def k_values(epochs: int) -> list[int]:
    """The k of pass@k / pass^k reported for a run of ``epochs``: every k up to 10 epochs, else
    1, 2, 5, 10, 20, 50, 100 up to ``epochs``, and ``epochs`` itself; empty below 2 epochs."""
    if epochs < 2:
        return []
    if epochs <= 10:
        return list(range(1, epochs + 1))
    return sorted({k for k in STANDARD_KS if k <= epochs} | {epochs})


def pass_k(n: int, c: int, ks: Iterable[int]) -> dict[str, dict[str, float]]:
    """``{"pass_at_k": {"k": …}, "pass_hat_k": {"k": …}}`` for one item with ``c`` of ``n`` passes."""
    ks = list(ks)
    return {"pass_at_k": {str(k): pass_at_k(n, c, k) for k in ks},
            "pass_hat_k": {str(k): pass_hat_k(n, c, k) for k in ks}}


def _mean_table(rows: list[dict[str, Any]], ks: list[int]) -> dict[str, Any]:
    return {"items": len(rows),
            "pass_at_k": {str(k): sum(r["pass_at_k"][str(k)] for r in rows) / len(rows) for k in ks},
            "pass_hat_k": {str(k): sum(r["pass_hat_k"][str(k)] for r in rows) / len(rows) for k in ks}}


def consistency(outcomes: Mapping[Any, list[int]], epochs: int,
                groups: Mapping[str, Mapping[Any, Any]] | None = None) -> dict[str, Any] | None:
    """pass@k beside pass^k (all k of k tries pass), as τ-bench defines them, from per-item 0/1
    outcomes (``{item key: [outcome per graded epoch]}``) of a run with ``epochs`` epochs.

    Items with fewer than ``epochs`` graded outcomes are left out (counted in ``skipped_items``),
    so every value is over the same items. ``groups`` maps a field name to ``{item key: value}``;
    each group's values are means over its items. Returns ``{"epochs", "k", "items",
    "skipped_items", "overall": {items, pass_at_k, pass_hat_k}, "per_item": [{key, n, passed,
    pass_at_k, pass_hat_k}], "by": {field: [{value, items, pass_at_k, pass_hat_k}]}}``, or None
    below 2 epochs or with no complete item."""
    ks = k_values(epochs)
    full = {key: o for key, o in outcomes.items() if len(o) >= epochs}
    if not ks or not full:
        return None
    per_item = [{"key": key, "n": len(o), "passed": sum(o), **pass_k(len(o), sum(o), ks)} for key, o in full.items()]
    by: dict[str, list[dict[str, Any]]] = {}
    for field, values in (groups or {}).items():
        buckets: dict[str, list[dict[str, Any]]] = {}
        for row in per_item:
            buckets.setdefault(json.dumps(values.get(row["key"]), default=str, sort_keys=True), []).append(row)
        by[field] = [{"value": json.loads(v), **_mean_table(rows, ks)} for v, rows in sorted(buckets.items())]
    return {"epochs": epochs, "k": ks, "items": len(full), "skipped_items": len(outcomes) - len(full),
            "overall": _mean_table(per_item, ks), "per_item": per_item, "by": by}


# -- faults -----------------------------------------------------------------------------


def _calls(trajectory: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for c in trajectory.get("tool_calls") or [] if isinstance(c, dict)]


def _injected(call: Mapping[str, Any]) -> bool:
    return bool((call.get("error") or {}).get("injected"))


def fault_count(trajectory: Mapping[str, Any]) -> int:
    """The injected faults of an episode: its ``faults``, else its calls with an injected error."""
    faults = trajectory.get("faults")
    if isinstance(faults, int) and not isinstance(faults, bool):
        return faults
    return sum(_injected(c) for c in _calls(trajectory))


def _graded(episodes: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in episodes if e.get("passed") is not None and isinstance(e.get("trajectory"), dict)]


def _share(hits: int, n: int) -> float | None:
    return hits / n if n else None


def fault_success(episodes: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Success of episodes with and without an injected fault: overall, and paired on the items
    that have episodes of both kinds (each item's success rate with faults and without, averaged
    over those items, so that the difference is not a difference of items).

    Returns ``{"with_faults": {episodes, passed, rate}, "without_faults": {…}, "paired": {items,
    with_faults, without_faults, difference}}`` (rates None where there is nothing to divide)."""
    split: dict[bool, list[Mapping[str, Any]]] = {True: [], False: []}
    per_item: dict[Any, dict[bool, list[int]]] = {}
    for e in _graded(episodes):
        faulted = fault_count(e["trajectory"]) > 0
        split[faulted].append(e)
        per_item.setdefault(e["index"], {True: [], False: []})[faulted].append(int(bool(e["passed"])))
    both = [v for v in per_item.values() if v[True] and v[False]]
    with_f = sum(sum(v[True]) / len(v[True]) for v in both) / len(both) if both else None
    without_f = sum(sum(v[False]) / len(v[False]) for v in both) / len(both) if both else None

    def side(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
        passed = sum(bool(e["passed"]) for e in rows)
        return {"episodes": len(rows), "passed": passed, "rate": _share(passed, len(rows))}
    return {"with_faults": side(split[True]), "without_faults": side(split[False]),
            "paired": {"items": len(both), "with_faults": with_f, "without_faults": without_f,
                       "difference": None if not both else with_f - without_f}}


_NO_MOVE_LEFT = ("max_turns", "final_tool")


def after_failure(trajectory: Mapping[str, Any], passed: bool | None, *, injected_only: bool = False) -> str | None:
    """What the agent did after the last failed tool call of an episode (None when no call
    failed; with ``injected_only``, only injected faults count as failures):

    * ``recovered``: it called a tool again in a later turn (a retry or another tool);
    * ``cut_off``: it had no move left (the failure came in the last turn and the episode stopped
      at ``max_turns`` or on a final tool), so the episode says nothing about its grit;
    * ``gave_up``: it ended the episode without another tool call and without success;
    * ``answered``: it ended without another tool call and the episode passed (the failed call
      was not needed)."""
    calls = _calls(trajectory)
    failed = [c for c in calls if c.get("error") and (_injected(c) or not injected_only)]
    if not failed:
        return None
    last = max(int(c.get("turn") or 0) for c in failed)
    if any(int(c.get("turn") or 0) > last for c in calls):
        return "recovered"
    if trajectory.get("stop_reason") in _NO_MOVE_LEFT:
        return "cut_off"
    return "answered" if passed else "gave_up"


def grit(episodes: Iterable[Mapping[str, Any]], *, injected_only: bool = False) -> dict[str, Any]:
    """Recovery and gave-up rates over the graded episodes with a failed tool call (see
    :func:`after_failure`), leaving out those cut off: ``{"episodes_with_failure", "cut_off",
    "recovered", "gave_up", "answered", "recovery_rate", "gave_up_rate"}``."""
    counts = {"recovered": 0, "gave_up": 0, "answered": 0, "cut_off": 0}
    for e in _graded(episodes):
        outcome = after_failure(e["trajectory"], e["passed"], injected_only=injected_only)
        if outcome is not None:
            counts[outcome] += 1
    judged = counts["recovered"] + counts["gave_up"] + counts["answered"]
    return {"episodes_with_failure": judged + counts["cut_off"], **counts,
            "recovery_rate": _share(counts["recovered"], judged), "gave_up_rate": _share(counts["gave_up"], judged)}


# -- ask or assume ----------------------------------------------------------------------


def is_truthy(value: Any) -> bool:
    """An item flag: JSON true, a non-zero number, or the strings true/yes/1 (any case)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)


def clarification(episodes: Iterable[Mapping[str, Any]], field: str = "ambiguous") -> dict[str, Any] | None:
    """Clarification precision and recall: an episode *asks* when its trajectory says ``asked``
    (its first move called ask_user or asked a question in text); it *should* ask when its
    item's ``field`` (a dotted path) is truthy. Items without the field are clear ones.

    Precision: of the episodes that asked, the share on ambiguous items; recall: of the episodes
    on ambiguous items, the share that asked. Returns ``{"field", "ambiguous_episodes",
    "clear_episodes", "true_positive", "false_positive", "false_negative", "true_negative",
    "precision", "recall"}``; None when no item has the field."""
    rows = [e for e in episodes if isinstance(e.get("trajectory"), dict) and e.get("passed") is not None]
    flags = [field_at(e.get("item"), field, _ABSENT) for e in rows]
    if all(value is _ABSENT for value in flags):
        return None
    cells = {(True, True): 0, (False, True): 0, (True, False): 0, (False, False): 0}  # (should ask, asked)
    for e, value in zip(rows, flags):
        cells[value is not _ABSENT and is_truthy(value), bool(e["trajectory"].get("asked"))] += 1
    tp, fp, fn, tn = cells[True, True], cells[False, True], cells[True, False], cells[False, False]
    return {"field": field, "ambiguous_episodes": tp + fn, "clear_episodes": fp + tn, "true_positive": tp,
            "false_positive": fp, "false_negative": fn, "true_negative": tn,
            "precision": _share(tp, tp + fp), "recall": _share(tp, tp + fn)}


# -- all together -------------------------------------------------------------------------


def episode_stats(episodes: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts over the episodes with a trajectory: ``{"episodes", "turns_mean", "tool_calls_mean",
    "failed_calls", "injected_faults", "episodes_with_faults", "stop_reasons": {reason: n}}``."""
    rows = [e["trajectory"] for e in episodes if isinstance(e.get("trajectory"), dict)]
    stops: dict[str, int] = {}
    for t in rows:
        stops[str(t.get("stop_reason"))] = stops.get(str(t.get("stop_reason")), 0) + 1
    n = len(rows)
    return {"episodes": n,
            "turns_mean": sum(int(t.get("turns") or 0) for t in rows) / n if n else None,
            "tool_calls_mean": sum(len(_calls(t)) for t in rows) / n if n else None,
            "failed_calls": sum(1 for t in rows for c in _calls(t) if c.get("error")),
            "injected_faults": sum(fault_count(t) for t in rows),
            "episodes_with_faults": sum(fault_count(t) > 0 for t in rows),
            "stop_reasons": dict(sorted(stops.items()))}


def agent_metrics(episodes: Iterable[Mapping[str, Any]], *,
                  ambiguous_field: str = "ambiguous") -> dict[str, Any] | None:
    """Every episode metric of a run: ``{"episodes": episode_stats, "faults": fault_success,
    "grit": grit over any failed call, "grit_injected": grit over injected faults only,
    "clarification": clarification or None}``; None when no episode has a trajectory."""
    rows = list(episodes)
    if not any(isinstance(e.get("trajectory"), dict) for e in rows):
        return None
    return {"episodes": episode_stats(rows), "faults": fault_success(rows), "grit": grit(rows),
            "grit_injected": grit(rows, injected_only=True),
            "clarification": clarification(rows, ambiguous_field)}
