"""``gradeloop suite mrcr …``: build OpenAI-MRCR conversations at any length, or import the published records."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .._checks import at_least
from ._common import flag_errors, out, output_errors, print_json

app = typer.Typer(help="OpenAI-MRCR: find the k-th of several identical asks in a long conversation.",
                  no_args_is_help=True)

LAYOUT_HELP = ("Prompt layout(s): native (default: the published form), or the conversation as documents: xml, "
               "pipe (ID: … | TITLE: … | CONTENT: …), json; comma-separated. Items then carry layout and placement.")
PLACEMENT_HELP = ("Where the final request goes in a document layout: start, end (default), both; comma-separated.")

TOKENIZER_HELP = ("Count tokens with this tokenizer: o200k_base (default, offline), local/smollm2, hf/<folder> "
                  "or a checkpoint folder.")


def report(summary: dict, as_json: bool) -> None:
    """Print what a build or import wrote: JSON, or paths and items per length bin."""
    if as_json:
        print_json(summary)
        return
    out.print(f"wrote {summary['items']} items to {summary['rows']}")
    out.print(f"eval: {summary['eval']}")
    for key, counts in summary["counts"].items():
        out.print(f"{key}: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
    out.print(f"run it: gradeloop eval run {summary['eval']} --model MODEL")


def variant_flags(layout: list[str], placement: list[str], default_placement: str
                  ) -> tuple[list[str] | None, list[str] | None]:
    """``--layout`` / ``--placement`` values (comma-separated or repeated) checked and split; None
    for a flag not given, so a build without them writes the published form unchanged."""
    from ..suites._layout import LAYOUTS, PLACEMENTS, parse_choices
    from ..suites._long import NATIVE

    return (parse_choices(layout, (NATIVE, *LAYOUTS), NATIVE, "layout") if layout else None,
            parse_choices(placement, PLACEMENTS, default_placement, "placement") if placement else None)


@app.command("build")
def build(
    tokens: str = typer.Option("8k", "--tokens", help="Lengths, comma-separated: 8k,32k,128k,1M (k = 1024); "
                               "each item is within 2% of its length and never over it."),
    needles: str = typer.Option("2,4,8", "--needles", help="Identical asks per conversation: 2, 4 and/or 8."),
    n: int = typer.Option(50, "--n", help="Items per length and needle count, 1 or more."),
    seed: int = typer.Option(0, "--seed", help="Same arguments and seed give byte-identical files."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for eval.yaml and rows.jsonl (created if missing)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help=TOKENIZER_HELP),
    max_tokens: int = typer.Option(1024, "--max-completion-tokens", help="The answer's token cap in eval.yaml."),
    layout: list[str] = typer.Option([], "--layout", help=LAYOUT_HELP),
    placement: list[str] = typer.Option([], "--placement", help=PLACEMENT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the paths and counts as JSON."),
) -> None:
    """Write an MRCR eval (eval.yaml + rows.jsonl) any model can run, graded by the published rule."""
    from ..suites._long import parse_list, parse_tokens
    from ..suites.mrcr import build as build_suite

    at_least(n, 1, "--n")
    at_least(max_tokens, 1, "--max-completion-tokens")
    with flag_errors("tokens", "needles", "tokenizer", "layout", "placement"), output_errors("--out"):
        sizes = parse_tokens(tokens)
        counts = [int(c) for c in parse_list(needles, ("2", "4", "8"), "needles")]
        layouts, placements = variant_flags(layout, placement, "end")
        summary = build_suite(sizes, counts, n, seed, out_dir, tokenizer, max_tokens, layouts=layouts,
                              placements=placements)
    report(summary, as_json)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="The published openai/mrcr file: Parquet or JSONL."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for eval.yaml and rows.jsonl (created if missing)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N records."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help=TOKENIZER_HELP),
    max_tokens: int = typer.Option(1024, "--max-completion-tokens", help="The answer's token cap in eval.yaml."),
    as_json: bool = typer.Option(False, "--json", help="Print the paths and counts as JSON."),
) -> None:
    """Write an eval from the published records as they are (prompt = a JSON string of messages)."""
    from ..suites.mrcr import import_records

    at_least(limit, 1, "--limit")
    with flag_errors("tokenizer"), output_errors("--out"):
        summary = import_records(file, out_dir, tokenizer=tokenizer, limit=limit, max_completion_tokens=max_tokens)
    report(summary, as_json)
