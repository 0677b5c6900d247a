"""Honest statistics for eval results: intervals, paired comparisons, pass@k, sample sizes.

Two models answering the same items are compared item by item (a paired design: an item
that is hard for one is usually hard for the other, so pairing removes most of the noise).
With one sample per item the test is McNemar's exact test on the items that changed; with
several (epochs), a sign-flip permutation test on the per-item differences of pass rates.
The interval of the difference is a paired bootstrap over items. Everything is pure Python
and deterministic (resampling is seeded).
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from statistics import NormalDist

__all__ = ["Comparison", "Rate", "compare_paired", "detectable_difference", "holm", "items_needed", "mcnemar_exact",
           "non_inferior", "paired_bootstrap", "pass_at_k", "pass_hat_k", "rate", "sign_flip_test", "wilson_interval"]

RESAMPLES = 10_000


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(passed: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a pass rate (good near 0 and 1 and for small n)."""
    if n <= 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = passed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if passed == 0 else max(0.0, centre - half)
    high = 1.0 if passed == n else min(1.0, centre + half)
    return low, high


@dataclass
class Rate:
    """A pass rate over items with its interval. ``samples`` counts item × epoch units."""

    value: float | None
    low: float | None
    high: float | None
    items: int
    samples: int


def rate(per_item: list[list[int]], confidence: float = 0.95) -> Rate:
    """The pass rate of items with one or more 0/1 outcomes each: Wilson's interval for one
    outcome per item, else a normal interval over the per-item means (items are the unit)."""
    items = [o for o in per_item if o]
    n = len(items)
    samples = sum(len(o) for o in items)
    if n == 0:
        return Rate(None, None, None, 0, 0)
    if all(len(o) == 1 for o in items):
        passed = sum(o[0] for o in items)
        low, high = wilson_interval(passed, n, confidence)
        return Rate(passed / n, low, high, n, samples)
    means = [sum(o) / len(o) for o in items]
    mean = sum(means) / n
    sd = math.sqrt(sum((m - mean) ** 2 for m in means) / (n - 1)) if n > 1 else 0.0
    half = _z(confidence) * sd / math.sqrt(n)
    return Rate(mean, max(0.0, mean - half), min(1.0, mean + half), n, samples)


def mcnemar_exact(a: list[int], b: list[int]) -> tuple[int, int, float]:
    """``(b_to_a, a_to_b, p)`` for paired 0/1 outcomes: items only A passes, items only B
    passes, and the two-sided exact binomial p-value of that split (p = 0.5)."""
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    n = only_a + only_b
    if n == 0:
        return only_a, only_b, 1.0
    tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2 ** n
    return only_a, only_b, min(1.0, 2 * tail)


def paired_bootstrap(a: list[float], b: list[float], *, confidence: float = 0.95, resamples: int = RESAMPLES,
                     seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``mean(b) - mean(a)``, resampling items (pairs) with replacement."""
    diffs = [y - x for x, y in zip(a, b)]
    n = len(diffs)
    if n == 0:
        return 0.0, 0.0
    rng = random.Random(seed)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    tail = (1 - confidence) / 2
    return means[int(tail * resamples)], means[min(resamples - 1, math.ceil((1 - tail) * resamples) - 1)]


def sign_flip_test(diffs: list[float], *, resamples: int = RESAMPLES, seed: int = 0) -> float:
    """Two-sided p-value of "the mean paired difference is 0": under that hypothesis each
    item's difference is as likely to have either sign. Exact for up to 16 non-zero
    differences, Monte Carlo (seeded) beyond."""
    nonzero = [d for d in diffs if d != 0]
    if not nonzero:
        return 1.0
    observed = abs(sum(nonzero)) - 1e-12
    if len(nonzero) <= 16:
        hits = 0
        for mask in range(2 ** len(nonzero)):
            total = sum(-d if mask >> i & 1 else d for i, d in enumerate(nonzero))
            hits += abs(total) >= observed
        return hits / 2 ** len(nonzero)
    rng = random.Random(seed)
    hits = sum(abs(sum(d if rng.random() < 0.5 else -d for d in nonzero)) >= observed for _ in range(resamples))
    return (hits + 1) / (resamples + 1)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from ``n`` samples of which ``c`` passed:
    ``1 - C(n - c, k) / C(n, k)`` (the chance that k samples drawn without replacement
    include a pass)."""
    if not 0 < k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n samples (n = {n})")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass^k (all of k samples pass, as τ-bench reports it) from ``n``
    samples of which ``c`` passed: ``C(c, k) / C(n, k)`` (the chance that k samples drawn
    without replacement all pass)."""
    if not 0 < k <= n:
        raise ValueError(f"pass^{k} needs 1 <= k <= n samples (n = {n})")
    return math.comb(c, k) / math.comb(n, k)


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the order given: the i-th smallest p (from 1) is
    multiplied by ``m - i + 1``, made non-decreasing along the sorted order, and capped at 1.
    Rejecting where the adjusted p is below alpha controls the family-wise error rate."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def non_inferior(low: float | None, margin: float) -> bool:
    """True when the lower bound ``low`` of the interval of B − A lies above ``-margin``: B is
    shown to be worse than A by less than ``margin`` (a one-sided test at half the interval's
    error rate). False when there is no interval."""
    if margin < 0:
        raise ValueError(f"the non-inferiority margin must be 0 or more, got {margin}")
    return low is not None and low > -margin


def detectable_difference(n: int, discordant: float, *, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """The smallest difference in pass rate a paired test on ``n`` items detects with
    ``power``, when a share ``discordant`` of items differ between the two models (normal
    approximation to McNemar's test)."""
    if n <= 0 or discordant <= 0:
        return None
    z = _z(1 - alpha) + NormalDist().inv_cdf(power)
    return min(1.0, z * math.sqrt(discordant / n))


def items_needed(difference: float, discordant: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Paired items needed to detect ``difference`` (absolute, e.g. 0.05) when a share
    ``discordant`` of items differ between the models."""
    if difference <= 0 or discordant <= 0:
        raise ValueError("difference and discordant share must be positive")
    z = _z(1 - alpha) + NormalDist().inv_cdf(power)
    return math.ceil(discordant * (z / difference) ** 2)


@dataclass
class Comparison:
    """B against A on the items both answered."""

    a: Rate
    b: Rate
    difference: float | None  # mean over items of (B's pass rate - A's)
    low: float | None
    high: float | None
    p_value: float | None
    test: str  # "mcnemar-exact" | "sign-flip" | "none"
    only_a: int  # items A passes and B fails (one sample each), or items where A did better
    only_b: int
    paired_items: int
    detectable: float | None  # smallest difference this many items detect at 80 % power
    confidence: float

    def to_dict(self) -> dict:
        return asdict(self)


def compare_paired(a: list[list[int]], b: list[list[int]], *, confidence: float = 0.95,
                   seed: int = 0) -> Comparison:
    """Compare two models item by item. ``a[i]`` and ``b[i]`` are the 0/1 outcomes (one per
    epoch) of item i; items where either side has no outcome are left out."""
    pairs = [(x, y) for x, y in zip(a, b) if x and y]
    ra, rb = rate([x for x, _ in pairs], confidence), rate([y for _, y in pairs], confidence)
    n = len(pairs)
    if n == 0:
        return Comparison(ra, rb, None, None, None, None, "none", 0, 0, 0, None, confidence)
    ma = [sum(x) / len(x) for x, _ in pairs]
    mb = [sum(y) / len(y) for _, y in pairs]
    diffs = [y - x for x, y in zip(ma, mb)]
    low, high = paired_bootstrap(ma, mb, confidence=confidence, seed=seed)
    only_a = sum(1 for d in diffs if d < 0)
    only_b = sum(1 for d in diffs if d > 0)
    if all(len(x) == 1 and len(y) == 1 for x, y in pairs):
        _, _, p = mcnemar_exact([x[0] for x, _ in pairs], [y[0] for _, y in pairs])
        test = "mcnemar-exact"
    else:
        p, test = sign_flip_test(diffs, seed=seed), "sign-flip"
    detectable = detectable_difference(n, (only_a + only_b) / n, alpha=1 - confidence)
    return Comparison(ra, rb, sum(diffs) / n, low, high, p, test, only_a, only_b, n, detectable, confidence)
