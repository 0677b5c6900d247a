"""``gradeloop suite graphwalks …``: build Graphwalks prompts at any length, or import the published records."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .._checks import at_least
from ._common import flag_errors, output_errors
from ._suite_mrcr import TOKENIZER_HELP, report, variant_flags

app = typer.Typer(help="Graphwalks: BFS to an exact depth, or parents of a node, over an edge list in the prompt.",
                  no_args_is_help=True)

LAYOUT_HELP = ("Prompt layout(s): native (default: the published prompt), or the edges as documents of 200 edges: "
               "xml, pipe (ID: … | TITLE: … | CONTENT: …), json; comma-separated. Items then carry layout and placement.")
PLACEMENT_HELP = ("Where the instructions and operation go in a document layout: start, end, both (default); "
                  "comma-separated.")
MODE_HELP = "Grading: corrected (default) or card (the dataset card's code as published, edge cases and all)."


def _mode(mode: str) -> str:
    from ..errors import InputError

    if mode not in ("corrected", "card"):
        raise InputError(f"unknown mode {mode!r} (corrected or card)", field="--mode")
    return mode


@app.command("build")
def build(
    tokens: str = typer.Option("8k", "--tokens", help="Lengths, comma-separated: 8k,128k,1M (k = 1024); "
                               "each prompt is within 2% of its length and never over it."),
    problem: str = typer.Option("bfs,parents", "--problem", help="Operations: bfs and/or parents."),
    n: int = typer.Option(50, "--n", help="Items per length and problem, 1 or more."),
    seed: int = typer.Option(0, "--seed", help="Same arguments and seed give byte-identical files."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for eval.yaml and rows.jsonl (created if missing)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help=TOKENIZER_HELP),
    mode: str = typer.Option("corrected", "--mode", help=MODE_HELP),
    max_tokens: int = typer.Option(2048, "--max-completion-tokens", help="The answer's token cap in eval.yaml."),
    layout: list[str] = typer.Option([], "--layout", help=LAYOUT_HELP),
    placement: list[str] = typer.Option([], "--placement", help=PLACEMENT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the paths and counts as JSON."),
) -> None:
    """Write a Graphwalks eval (eval.yaml + rows.jsonl) any model can run, graded by set F1."""
    from ..suites._long import parse_list, parse_tokens
    from ..suites.graphwalks import PROBLEMS, build as build_suite

    at_least(n, 1, "--n")
    at_least(max_tokens, 1, "--max-completion-tokens")
    with flag_errors("tokens", "problem", "tokenizer", "layout", "placement"), output_errors("--out"):
        sizes, problems = parse_tokens(tokens), parse_list(problem, PROBLEMS, "problem")
        layouts, placements = variant_flags(layout, placement, "both")
        summary = build_suite(sizes, problems, n, seed, out_dir, tokenizer=tokenizer, mode=_mode(mode),
                              max_completion_tokens=max_tokens, layouts=layouts, placements=placements)
    report(summary, as_json)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="The published openai/graphwalks file: Parquet or JSONL."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for eval.yaml and rows.jsonl (created if missing)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N records."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help=TOKENIZER_HELP),
    mode: str = typer.Option("corrected", "--mode", help=MODE_HELP),
    max_tokens: int = typer.Option(2048, "--max-completion-tokens", help="The answer's token cap in eval.yaml."),
    as_json: bool = typer.Option(False, "--json", help="Print the paths and counts as JSON."),
) -> None:
    """Write an eval from the published records as they are (prompt, answer_nodes, problem_type, …)."""
    from ..suites.graphwalks import import_records

    at_least(limit, 1, "--limit")
    with flag_errors("tokenizer"), output_errors("--out"):
        summary = import_records(file, out_dir, tokenizer=tokenizer, limit=limit, mode=_mode(mode),
                                 max_completion_tokens=max_tokens)
    report(summary, as_json)
