"""``gradeloop suite if-categories …``: build the six-category instruction-following eval."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .._checks import at_least
from ._common import flag_errors, out, output_errors, print_json

app = typer.Typer(help="The six instruction-following categories of real API use (GPT-4.1's): build an eval.",
                  no_args_is_help=True)


@app.command("build")
def build(
    n: int = typer.Option(300, "--n", help="Items per variant, 1 or more; they cycle through categories and difficulties."),
    seed: int = typer.Option(0, "--seed", help="Same n and seed give byte-identical files."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for eval.yaml and rows.jsonl (created if missing)."),
    variant: list[str] = typer.Option([], "--variant", help="Prompt layout: baseline (default), markdown, xml, "
                                      "before, after, both, persist, or a '+' combination such as xml+both; repeat "
                                      "for several (every item once per variant)."),
    as_json: bool = typer.Option(False, "--json", help="Print the paths and counts as JSON."),
) -> None:
    """Write an eval (eval.yaml + rows.jsonl) any model can run; prints counts per category, difficulty, variant."""
    from ..suites.if_categories import build as build_suite

    at_least(n, 1, "--n")
    with flag_errors("variant"), output_errors("--out"):
        summary = build_suite(n, seed, out_dir, variants=variant or None)
    if as_json:
        print_json(summary)
        return
    out.print(f"wrote {summary['items']} items to {summary['rows']}")
    out.print(f"eval: {summary['eval']}")
    out.print(_counts_table(summary["counts"]["category_difficulty"]))
    variants = ", ".join(f"{name} {count}" for name, count in summary["counts"]["variant"].items())
    out.print(f"variants: {variants}")
    out.print(f"run it: gradeloop eval run {summary['eval']} --model MODEL")


def _counts_table(cells: dict[str, dict[str, int]]) -> Table:
    """Items per category (rows) and difficulty (columns), over all variants."""
    difficulties = list(next(iter(cells.values())))
    table = Table(title="Items per category and difficulty", title_justify="left")
    table.add_column("category")
    for name in (*difficulties, "total"):
        table.add_column(name, justify="right")
    for category, row in cells.items():
        table.add_row(category, *(str(row[d]) for d in difficulties), str(sum(row.values())))
    totals = [sum(row[d] for row in cells.values()) for d in difficulties]
    table.add_row("total", *map(str, totals), str(sum(totals)))
    return table
