"""Effective context length: the longest length at which a model still holds up.

RULER calls a length "effective" when the model's score there stays above a threshold. Here the
threshold is, by default, 85% of the model's own score at the shortest length tested (so a model
is measured against itself, not against another model); an absolute threshold (RULER used
Llama-2-7B's 85.6%) can be given instead. The score is a pass rate, or a mean score for suites
that publish one (MRCR's SequenceMatcher ratio, Graphwalks' set F1), where "pass" means a perfect
answer and would make the effective length harsh. The effective length is the longest tested length L
such that the score at L and at every shorter tested length is at or above the threshold; None
when even the shortest length scores 0 (nothing to hold on to) or no length is tested.
"""

from __future__ import annotations

from typing import Any

__all__ = ["effective_length", "DEFAULT_RATIO"]

DEFAULT_RATIO = 0.85


def effective_length(rates: dict[int, float | None], ratio: float = DEFAULT_RATIO,
                     absolute: float | None = None, metric: str = "pass_rate") -> dict[str, Any]:
    """From ``{length: score}`` (lengths in tokens; None scores are skipped; ``metric`` names the
    score, ``pass_rate`` or ``mean_score``): ``{"effective_length", "threshold", "baseline", "rule",
    "metric", "bins": [{"length", <metric>, "holds"}]}``."""
    scored = sorted((int(k), v) for k, v in rates.items() if v is not None)
    baseline = scored[0][1] if scored else None
    threshold = absolute if absolute is not None else (ratio * baseline if baseline else None)
    bins, effective, holding = [], None, threshold is not None
    for length, rate in scored:
        holds = threshold is not None and rate >= threshold
        holding = holding and holds
        if holding:
            effective = length
        bins.append({"length": length, metric: rate, "holds": holds})
    rule = (f"score >= {absolute:g}" if absolute is not None else f"score >= {ratio:g} x score at the shortest length")
    return {"effective_length": effective, "threshold": threshold, "baseline": baseline, "rule": rule,
            "metric": metric, "bins": bins}
