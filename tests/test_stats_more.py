"""Holm, pass^k, non-inferiority: checked against statsmodels/scipy on fixed data and by
brute-force enumeration, plus property tests (hypothesis) for their invariants."""

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradeloop.stats import (holm, mcnemar_exact, non_inferior, pass_at_k, pass_hat_k, rate, wilson_interval)

FIXED_P = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.5, 0.0001, 0.9, 0.049]


def test_holm_matches_statsmodels_on_fixed_p_values():
    from statsmodels.stats.multitest import multipletests

    for ps in (FIXED_P, [0.02], [0.5, 0.5, 0.5], [1e-9, 0.3, 0.01, 0.011], [0.04, 0.04, 0.04, 0.04]):
        reject, adjusted, _, _ = multipletests(ps, alpha=0.05, method="holm")
        assert holm(ps) == pytest.approx(list(adjusted), abs=1e-12)
        assert [p < 0.05 for p in holm(ps)] == list(reject)
    assert holm([]) == []


def test_wilson_and_mcnemar_match_statsmodels():
    from statsmodels.stats.contingency_tables import mcnemar
    from statsmodels.stats.proportion import proportion_confint

    for passed, n in ((0, 10), (3, 10), (17, 40), (40, 40), (1, 200)):
        assert wilson_interval(passed, n) == pytest.approx(proportion_confint(passed, n, method="wilson"), abs=1e-9)
    a = [1] * 12 + [0] * 30 + [1] * 5 + [0] * 3
    b = [1] * 12 + [0] * 30 + [0] * 5 + [1] * 3
    # table [[both pass, only A], [only B, neither]]
    table = [[12, 5], [3, 30]]
    assert mcnemar_exact(a, b)[2] == pytest.approx(mcnemar(table, exact=True).pvalue, abs=1e-12)


def _brute_force(n: int, c: int, k: int) -> tuple[float, float]:
    """pass@k and pass^k by enumerating every k-subset of n samples of which c pass."""
    outcomes = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(outcomes, k))
    return (sum(any(s) for s in subsets) / len(subsets), sum(all(s) for s in subsets) / len(subsets))


def test_pass_at_k_and_pass_hat_k_match_brute_force_enumeration():
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                at_k, hat_k = _brute_force(n, c, k)
                assert pass_at_k(n, c, k) == pytest.approx(at_k, abs=1e-12), (n, c, k)
                assert pass_hat_k(n, c, k) == pytest.approx(hat_k, abs=1e-12), (n, c, k)
    with pytest.raises(ValueError):
        pass_hat_k(3, 1, 4)


def test_pass_hat_k_against_scipy_comb():
    from scipy.special import comb

    assert pass_hat_k(10, 7, 3) == pytest.approx(comb(7, 3, exact=True) / comb(10, 3, exact=True))
    assert pass_hat_k(5, 5, 5) == 1.0 and pass_hat_k(5, 4, 5) == 0.0


def test_non_inferior_is_strictly_above_minus_the_margin():
    assert non_inferior(-0.011, 0.02) and non_inferior(0.05, 0.0)
    assert not non_inferior(-0.02, 0.02) and not non_inferior(-0.03, 0.02) and not non_inferior(None, 0.02)
    with pytest.raises(ValueError):
        non_inferior(0.0, -0.01)


@st.composite
def samples(draw):
    n = draw(st.integers(1, 30))
    return n, draw(st.integers(0, n))


@settings(max_examples=200, deadline=None)
@given(samples())
def test_pass_at_k_is_monotone_and_pass_hat_k_antitone_in_k(nc):
    n, c = nc
    at = [pass_at_k(n, c, k) for k in range(1, n + 1)]
    hat = [pass_hat_k(n, c, k) for k in range(1, n + 1)]
    assert all(x <= y + 1e-12 for x, y in zip(at, at[1:]))
    assert all(x + 1e-12 >= y for x, y in zip(hat, hat[1:]))
    assert at[0] == pytest.approx(c / n) == pytest.approx(hat[0])
    assert all(h <= a + 1e-12 for h, a in zip(hat, at))  # all k pass implies one of k passes


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=25))
def test_holm_is_never_below_raw_p_and_keeps_the_order(ps):
    adjusted = holm(ps)
    assert all(raw <= adj + 1e-15 and adj <= 1 for raw, adj in zip(ps, adjusted))
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    assert all(adjusted[i] <= adjusted[j] + 1e-15 for i, j in zip(order, order[1:]))
    assert all(adj <= min(1.0, len(ps) * raw) + 1e-15 for raw, adj in zip(ps, adjusted))  # never worse than Bonferroni


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 1), min_size=1, max_size=5), min_size=1, max_size=40),
       st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_intervals_contain_the_estimate(per_item, confidence):
    r = rate(per_item, confidence)
    assert r.low - 1e-12 <= r.value <= r.high + 1e-12
    passed, n = sum(o[0] for o in per_item), len(per_item)
    low, high = wilson_interval(passed, n, confidence)
    assert low - 1e-12 <= passed / n <= high + 1e-12
    assert math.isfinite(low) and math.isfinite(high)
