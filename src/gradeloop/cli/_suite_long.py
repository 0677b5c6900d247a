"""``gradeloop suite needles …`` and ``gradeloop suite grounding …``: build the long-context evals."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .._checks import at_least
from ._common import flag_errors, output_errors
from ._suite_mrcr import report

needles_app = typer.Typer(help="RULER-style needle tasks at set token lengths: build an eval.", no_args_is_help=True)
grounding_app = typer.Typer(help="Counterfactual grounding (answer from the documents, not memory): build an eval.",
                            no_args_is_help=True)

_LAYOUT_HELP = ("Document layout(s): xml, pipe (ID: … | TITLE: … | CONTENT: …), json; comma-separated "
                "(default xml).")
_PLACEMENT_HELP = "Where the instructions go: start, end, both; comma-separated (default start)."


@needles_app.command("build")
def build_needles(
    tokens: list[str] = typer.Option(["4k"], "--tokens", help="Prompt lengths: 4k,16k,128k,1m or token counts "
                                     "(k = 1024); each met within 2%."),
    task: list[str] = typer.Option(["single"], "--task", help="single, multikey, multivalue, multiquery, vartrack, "
                                   "common-words, frequent-words; comma-separated."),
    n: int = typer.Option(1, "--n", help="Items per task, length and variant (1 or more)."),
    seed: int = typer.Option(0, "--seed", help="Same arguments and seed give byte-identical files."),
    layout: list[str] = typer.Option([], "--layout", help=_LAYOUT_HELP),
    placement: list[str] = typer.Option([], "--placement", help=_PLACEMENT_HELP),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Count tokens with this model's tokenizer "
                                            "(a checkpoint folder, hf/<folder>, local/smollm2) instead of o200k_base."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for eval.yaml and rows.jsonl (created if missing)."),
    as_json: bool = typer.Option(False, "--json", help="Print the paths and counts as JSON."),
) -> None:
    """Write an eval of needle tasks; items carry length_bin, n_tokens, layout and placement."""
    from ..suites._filler import parse_lengths
    from ..suites._layout import LAYOUTS, PLACEMENTS, parse_choices
    from ..suites.needles import TASKS, build

    at_least(n, 1, "--n")
    with flag_errors("tokens", "task", "layout", "placement", "tokenizer"), output_errors("--out"):
        summary = build(parse_lengths(tokens), parse_choices(task, TASKS, "single", "task"), out_dir, n=n, seed=seed,
                        layouts=parse_choices(layout, LAYOUTS, "xml", "layout"),
                        placements=parse_choices(placement, PLACEMENTS, "start", "placement"), tokenizer=tokenizer)
    report(summary, as_json)


@grounding_app.command("build")
def build_grounding(
    n: int = typer.Option(200, "--n", help="Items per variant (1 or more); one in four is unanswerable."),
    seed: int = typer.Option(0, "--seed", help="Same arguments and seed give byte-identical files."),
    layout: list[str] = typer.Option([], "--layout", help=_LAYOUT_HELP),
    placement: list[str] = typer.Option([], "--placement", help=_PLACEMENT_HELP),
    fallback: str = typer.Option("I don't know based on the documents", "--fallback",
                                 help="The reply expected when the documents do not hold the answer."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for eval.yaml and rows.jsonl (created if missing)."),
    as_json: bool = typer.Option(False, "--json", help="Print the paths and counts as JSON."),
) -> None:
    """Write an eval of counterfactual documents and questions; items carry kind, category, layout, placement."""
    from ..suites._layout import LAYOUTS, PLACEMENTS, parse_choices
    from ..suites.grounding import build

    at_least(n, 1, "--n")
    with flag_errors("layout", "placement", "fallback"), output_errors("--out"):
        summary = build(n, seed, out_dir, layouts=parse_choices(layout, LAYOUTS, "xml", "layout"),
                        placements=parse_choices(placement, PLACEMENTS, "start", "placement"), fallback=fallback)
    report(summary, as_json)
