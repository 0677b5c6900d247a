"""Several runs against the first: paired comparisons with cost, non-inferiority, JUnit XML."""

from __future__ import annotations

from typing import Any

from ..report import compare_runs
from ..stats import non_inferior
from ..store import Store
from ._prices import PriceTable, load_prices, run_cost


def compare_many(store: Store, run_ids: list[str], *, by: list[str] | None = None, confidence: float = 0.95,
                 margin: float | None = None, prices: PriceTable | None = None) -> list[dict[str, Any]]:
    """Each run after the first against the first (:func:`gradeloop.report.compare_runs`), with
    ``a.cost`` / ``b.cost`` (cost per 1,000 items, p50/p95 latency, tokens) and, given a
    ``margin``, ``non_inferiority: {margin, lower_bound, passed}`` for the overall difference."""
    if len(run_ids) < 2:
        from ..errors import InputError

        raise InputError("compare needs two or more runs (each is compared with the first)", field="run_id")
    prices = prices or load_prices()
    costs: dict[str, dict[str, Any]] = {}

    def cost(run_id: str) -> dict[str, Any]:
        if run_id not in costs:
            costs[run_id] = run_cost(store, run_id, prices).to_dict()
        return costs[run_id]

    out = []
    for other in run_ids[1:]:
        cmp = compare_runs(store, run_ids[0], other, by=by, confidence=confidence)
        cmp["a"]["cost"], cmp["b"]["cost"] = cost(cmp["a"]["run_id"]), cost(cmp["b"]["run_id"])
        if margin is not None:
            low = cmp["overall"]["low"]
            cmp["non_inferiority"] = {"margin": margin, "lower_bound": low, "passed": non_inferior(low, margin)}
        out.append(cmp)
    return out


def _rows(cmp: dict[str, Any]) -> list[tuple[str, dict[str, Any], float | None]]:
    """``(name, row, p)`` for the overall row (raw p) and every criterion and group (Holm's p)."""
    rows = [("all criteria", cmp["overall"], cmp["overall"]["p_value"])]
    rows += [(f"criterion: {c['name']}", c, _holm_p(c)) for c in cmp["criteria"]]
    rows += [(f"{g['field']} = {g['value']}", g, _holm_p(g)) for g in cmp["by"]]
    return rows


def _holm_p(row: dict[str, Any]) -> float | None:
    return row["p_value"] if row.get("p_holm") is None else row["p_holm"]


def regressions(cmp: dict[str, Any]) -> list[str]:
    """The rows of a comparison where B is worse than A beyond chance: the difference is below 0
    and its p (Holm-corrected below the overall row) is under 1 − confidence."""
    alpha = 1 - cmp["overall"]["confidence"]
    return [name for name, row, p in _rows(cmp)
            if row["difference"] is not None and row["difference"] < 0 and p is not None and p < alpha]


def junit_xml(comparisons: list[dict[str, Any]]) -> str:
    """JUnit XML for CI: one ``testsuite`` per comparison (B vs A) and one ``testcase`` per row
    (overall, each criterion, each --by group); a ``failure`` for a regression beyond chance,
    and on the overall row for a failed non-inferiority check."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name="gradeloop eval compare")
    for cmp in comparisons:
        suite = ET.SubElement(root, "testsuite", name=f"{_label(cmp['b'])} vs {_label(cmp['a'])}")
        failed = set(regressions(cmp))
        for name, row, p in _rows(cmp):
            case = ET.SubElement(suite, "testcase", classname=suite.get("name"), name=name)
            if name in failed:
                ET.SubElement(case, "failure", type="regression", message=(
                    f"B − A = {100 * row['difference']:+.1f} points [{100 * row['low']:+.1f}, {100 * row['high']:+.1f}], "
                    f"p = {p:.4g}"))
            ni = cmp.get("non_inferiority")
            if name == "all criteria" and ni and not ni["passed"]:
                low = "none" if ni["lower_bound"] is None else f"{100 * ni['lower_bound']:+.1f}"
                ET.SubElement(case, "failure", type="non-inferiority", message=(
                    f"lower bound of B − A is {low} points, not above −{100 * ni['margin']:.1f}"))
        suite.set("tests", str(len(suite)))
        suite.set("failures", str(sum(len(case.findall("failure")) > 0 for case in suite)))
    root.set("tests", str(sum(int(s.get("tests")) for s in root)))
    root.set("failures", str(sum(int(s.get("failures")) for s in root)))
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _label(side: dict[str, Any]) -> str:
    return side["model"] or side["run_id"]
