"""``gradeloop suite ifeval …``: score IFEval responses, or build an IFEval eval any model can run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .._checks import at_least
from ..errors import InputError
from ..suites import ifeval
from ._common import out, output_errors

app = typer.Typer(help="IFEval: score responses, build an eval any model can run.", no_args_is_help=True)


@app.command("score")
def score(
    data: Path = typer.Option(..., "--data", help="IFEval's input_data.jsonl (key, prompt, instruction_id_list, kwargs)."),
    responses: Path = typer.Option(..., "--responses", help="JSONL of {\"prompt\", \"response\"}, matched by prompt."),
    skip_missing: bool = typer.Option(False, "--skip-missing", help="Leave out prompts that have no response."),
    as_json: bool = typer.Option(False, "--json", help="One JSON verdict record per prompt, then a metrics line."),
) -> None:
    """Check every instruction strictly and loosely; prints the four IFEval metrics."""
    inputs, answers = ifeval.read_inputs(data), ifeval.read_responses(responses)
    try:
        result = ifeval.score(inputs, answers, skip_missing=skip_missing)
    except InputError as exc:
        raise InputError(exc.message.replace("skip_missing=True", "--skip-missing"), file=str(responses)) from None
    if as_json:
        for record in result.records:
            sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.write(json.dumps({"metrics": result.metrics, "prompts": len(result.records),
                                     "skipped": result.skipped, "sentence_splitter": result.sentence_splitter}) + "\n")
        sys.stdout.flush()
        return
    out.print(_metrics_table(result))
    out.print(_breakdown_table(result.per_instruction("category"), "category"))
    note = f"{len(result.records)} prompts"
    if result.skipped:
        note += f" ({result.skipped} without a response left out)"
    if result.sentence_splitter != "punkt":
        note += "; sentences counted without NLTK's punkt_tab (set NLTK_DATA for IFEval's exact counts)"
    out.print(note)


def _metrics_table(result: ifeval.IFEvalScores) -> Table:
    table = Table(title="IFEval", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, f"{100 * value:.2f}%")
    return table


def _breakdown_table(rows: dict[str, dict[str, float]], label: str) -> Table:
    table = Table(title=f"Instruction-level accuracy per {label}", title_justify="left")
    for column in (label, "instructions", "strict", "loose"):
        table.add_column(column, justify="left" if column == label else "right")
    for name, row in rows.items():
        table.add_row(name, str(row["count"]), f"{100 * row['strict']:.1f}%", f"{100 * row['loose']:.1f}%")
    return table


@app.command("build")
def build(
    data: Path = typer.Option(..., "--data", help="IFEval's input_data.jsonl."),
    out_dir: Path = typer.Option(Path("evals/ifeval"), "--out", help="Folder for eval.yaml and rows.jsonl."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N prompts (N >= 1)."),
) -> None:
    """Write eval.yaml + rows.jsonl: IFEval as an eval any model can run (gradeloop eval run)."""
    at_least(limit, 1, "--limit")
    with output_errors("--out"):
        path = ifeval.build(data, out_dir, limit=limit)
    out.print(f"wrote {path} and {path.parent / 'rows.jsonl'}")
    out.print(f"run it: gradeloop eval run {path} --model <provider/model>")
