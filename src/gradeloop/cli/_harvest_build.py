"""``gradeloop harvest build``: one use-case cluster into an eval set (eval.yaml + split data)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ._common import open_store, out, print_json
from ._harvest import app


@app.command("build")
def build_command(
    cluster: int = typer.Option(..., "--cluster", help="The cluster id (see `gradeloop harvest clusters`)."),
    out_dir: Path = typer.Option(..., "--out", help="Directory for eval.yaml and train/valid/test.jsonl."),
    split: str = typer.Option("70/15/15", help="train/valid/test shares, stratified by topic."),
    seed: int = typer.Option(0, help="Seed of the split (the same seed gives the same split)."),
    fmt: str = typer.Option("eval", "--format", help="eval, or sft/rft: train/valid as fine-tuning files."),
    judge: Optional[str] = typer.Option(None, help="A judge model: adds a score_model rubric for the "
                                        "instructions no detector can check (none without it)."),
    min_records: int = typer.Option(1, "--min-records", min=1, help="Refuse a cluster with fewer records."),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Build an eval set from a cluster: criteria from its instructions, split by topic, no leakage."""
    from ..harvest._build import build, parse_split

    report = build(open_store(), cluster, out_dir, split=parse_split(split), seed=seed, fmt=fmt, judge=judge,
                   min_records=min_records)
    if as_json:
        print_json(report.to_dict())
        return
    counts = report.counts
    out.print(f"built cluster {cluster} into {out_dir}: dataset {report.dataset_id}")
    out.print(f"split: {counts['train']} train, {counts['valid']} valid, {counts['test']} test"
              + (f" ({report.skipped} record(s) without a user turn skipped)" if report.skipped else ""))
    moved = report.leakage_moved
    out.print(f"leakage: {moved.get('test', 0)} test and {moved.get('valid', 0)} valid item(s) had a near duplicate "
              "in train and moved to train")
    table = Table("criterion", "kind", "from")
    for c in report.criteria:
        table.add_row(c["name"], c["kind"], c["from"])
    out.print(table)
    for note in report.notes:
        out.print(f"note: {note}")
    out.print(f"run it: gradeloop eval run {out_dir / 'eval.yaml'} -m <provider/model>")
