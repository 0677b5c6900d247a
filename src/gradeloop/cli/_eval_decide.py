"""``gradeloop eval recommend | cusp | health``: choosing a model, where RFT pays, eval health."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import err, open_store, out, print_json
from ._decide_display import cusp_table, health_lines, recommendation_table
from ._eval import app

PRICES_HELP = "Price table (YAML: {MODEL: {input, cached_input, output}} in USD per million tokens, or {per_hour}); " \
              "overrides the built-in prices and GRADELOOP_PRICES."


@app.command("recommend")
def recommend_command(
    runs: list[str] = typer.Argument(..., help="Runs of the same items, one per candidate model (ids or prefixes)."),
    baseline: str = typer.Option(..., "--baseline", help="The run every candidate must not be worse than."),
    margin: float = typer.Option(0.02, min=0, max=1, help="Largest acceptable loss in pass rate (0.02 = 2 points)."),
    prices: Optional[Path] = typer.Option(None, "--prices", help=PRICES_HELP),
    max_p95_latency: Optional[float] = typer.Option(None, "--max-p95-latency", min=0,
                                                    help="Only candidates whose p95 latency is at most this (seconds)."),
    confidence: float = typer.Option(0.95, min=0.5, max=0.999, help="Level of the paired intervals."),
    as_json: bool = typer.Option(False, "--json", help="Print the recommendation as JSON (recommended.model, .run_id)."),
) -> None:
    """The cheapest candidate that is not worse than the baseline by more than --margin (lower
    bound of the paired interval of candidate − baseline above −margin), within the latency bound."""
    from ..decide import load_prices, recommend

    rec = recommend(open_store(), runs, baseline=baseline, margin=margin, prices=load_prices(prices),
                    max_p95_latency_s=max_p95_latency, confidence=confidence).to_dict()
    if as_json:
        print_json(rec)
        return
    out.print(recommendation_table(rec))
    out.print(rec["sentence"])


@app.command("cusp")
def cusp_command(
    run_id: str = typer.Argument(..., help="A run with several epochs (id or unique prefix)."),
    by: Optional[str] = typer.Option(None, "--by", help="Group items by this item field."),
    k: Optional[int] = typer.Option(None, "--k", min=2, help="k of pass@k and pass^k (default: the run's epochs)."),
    write_rft: Optional[Path] = typer.Option(None, "--write-rft", help="Write the target items as an RFT training "
                                             "file (JSONL) and the eval's criteria as its grader (.grader.json)."),
    as_json: bool = typer.Option(False, "--json", help="Print items, groups and targets as JSON."),
) -> None:
    """Unbiased pass@k and pass^k per item and group; flags groups on the cusp (pass@1 10–50%,
    pass@k at least 20 points above it) as targets for reinforcement fine-tuning."""
    from ..decide import cusp, write_rft as write

    store = open_store()
    report = cusp(store, run_id, by=by, k=k)
    written = write(store, report, write_rft) if write_rft else None
    data = report.to_dict()
    if as_json:
        print_json({**data, "rft_file": written})
        return
    out.print(cusp_table(data))
    cusp_items = sum(i["cusp"] for i in data["items"])
    out.print(f"{cusp_items} of {len(data['items'])} items on the cusp (pass@1 {100 * report.rule.low:.0f}–"
              f"{100 * report.rule.high:.0f}%, pass@{report.k} at least {100 * report.rule.min_gain:.0f} points higher)")
    if written:
        err.print(f"wrote {written['rows']} RFT rows to {written['file']} and the grader to {written['grader_file']}; "
                  f"train with: gradeloop tune create --method reinforcement --training-file {written['file']} "
                  f"--grader {written['grader_file']} --model MODEL")


@app.command("health")
def health_command(
    eval_name: str = typer.Argument(..., help="The eval's name (all its runs, items matched by content)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Saturated items, items no model passes, flaky items, judge disagreement, and whether the
    eval is saturating, across every run of an eval."""
    from ..decide import health

    report = health(open_store(), eval_name).to_dict()
    if as_json:
        print_json(report)
        return
    for line in health_lines(report):
        out.print(line, markup=False)
