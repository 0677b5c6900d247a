"""Deciding with eval results: what a run costs, which model to use, where RFT pays, and
whether an eval still measures anything. Reads the store and gradeloop.report; the runner
never imports it. Every result is plain data with a ``to_dict()`` JSON form."""

from __future__ import annotations

from ._compare import compare_many, junit_xml, regressions
from ._cusp import CuspReport, CuspRule, cusp, write_rft
from ._health import HealthReport, health
from ._prices import DEFAULT_PRICES_YAML, Price, PriceTable, RunCost, load_prices, run_cost
from ._recommend import Candidate, Recommendation, recommend

__all__ = ["CuspRule", "PriceTable", "compare_many", "cusp", "health", "junit_xml", "load_prices", "recommend",
           "regressions", "run_cost", "write_rft"]
