"""``gradeloop view`` (the read-only web viewer) and ``gradeloop eval report`` (one offline HTML file)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import err, flag_errors, open_store
from ._eval import app as eval_app
from ._eval_decide import PRICES_HELP


def view_command(
    port: int = typer.Option(8484, help="Port (1 to 65535)."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind; anything but loopback needs --token."),
    token: Optional[str] = typer.Option(None, "--token", envvar="GRADELOOP_VIEW_TOKEN",
                                        help="Token every request must carry (Authorization: Bearer, ?token=, "
                                             "then a cookie); required off loopback."),
) -> None:
    """A read-only web viewer over the store: evals, runs, items, comparisons, fine-tuning jobs."""
    from ..view import serve_viewer

    with flag_errors("host", "port", "token"):
        serve_viewer(host=host, port=port, token=token)


@eval_app.command("report")
def report_command(
    runs: list[str] = typer.Argument(..., help="Runs to report on (ids or prefixes); the first is the baseline."),
    out: Path = typer.Option(..., "--out", "-o", help="The HTML file to write."),
    by: Optional[list[str]] = typer.Option(None, "--by", help="Also break pass rates down by this item field "
                                           "(repeatable)."),
    prices: Optional[Path] = typer.Option(None, "--prices", help=PRICES_HELP),
) -> None:
    """One self-contained HTML report (opens from disk, offline): pass rates with intervals per
    model, criterion and --by field, paired differences against the first run, cost vs quality
    (Pareto front), latency, score histograms, flipped items side by side."""
    from ..decide import load_prices
    from ..view import write_report

    path = write_report(open_store(), runs, out, by=by or None, prices=load_prices(prices))
    err.print(f"wrote {path}")
