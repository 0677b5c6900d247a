"""``gradeloop harvest``: real usage (recorded or imported) into evals."""

from __future__ import annotations

import datetime as dt

import typer
from rich.table import Table

from ..report import list_object
from ._common import open_store, out, print_json

app = typer.Typer(help="Turn real usage (recorded by `gradeloop proxy` or imported) into evals.",
                  no_args_is_help=True)


def _day(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d") if ts else ""


@app.command("list")
def list_sources(as_json: bool = typer.Option(False, "--json", help="OpenAI's list shape: {object: list, data}.")) -> None:
    """What was recorded or imported, by source and tag: records, occurrences, dates, errors."""
    rows = open_store().harvest_sources()
    if as_json:
        print_json(list_object([{"object": "harvest.source", **r} for r in rows]))
        return
    if not rows:
        out.print("nothing harvested yet (record with `gradeloop proxy`, or `gradeloop harvest import FILE`)")
        return
    table = Table("source", "tag", "records", "occurrences", "errors", "from", "to")
    for r in rows:
        table.add_row(r["source"], r["tag"] or "", str(r["records"]), str(r["occurrences"]), str(r["errors"]),
                      _day(r["first"]), _day(r["last"]))
    out.print(table)


from . import _harvest_import  # noqa: E402,F401  (registers `harvest import`)
from . import _harvest_clusters  # noqa: E402,F401  (registers harvest clusters / topics)
from . import _harvest_build  # noqa: E402,F401  (registers `harvest build`)
