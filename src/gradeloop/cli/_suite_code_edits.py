"""``gradeloop suite code-edits …``: build the code-edit eval, or mine one from a git repository."""

from __future__ import annotations

from pathlib import Path

import typer

from .._checks import at_least
from ._common import flag_errors, output_errors
from ._suite_mrcr import report

app = typer.Typer(help="Code edits in a given format (V4A, search/replace, unified diff, whole files), checked by "
                       "tests in the sandbox.", no_args_is_help=True)

_FORMAT_HELP = "Edit format(s): v4a, search-replace, udiff, whole; comma-separated (default v4a)."


def _formats(text: str) -> list[str]:
    from ..edits import FORMATS
    from ..suites._long import parse_list

    return parse_list(text, FORMATS, "format")


@app.command("build")
def build(
    n: int = typer.Option(100, "--n", help="Items in all (1 or more): tasks drawn by the seed, each written once "
                          "per format."),
    seed: int = typer.Option(0, "--seed", help="Same arguments and seed give byte-identical files."),
    fmt: str = typer.Option("v4a", "--format", help=_FORMAT_HELP),
    out_dir: Path = typer.Option(..., "--out", help="Folder for eval.yaml and rows.jsonl (created if missing)."),
    as_json: bool = typer.Option(False, "--json", help="Print the paths and counts as JSON."),
) -> None:
    """Write an eval of bug fixes, features, renames and API changes over the shipped projects."""
    from ..suites.code_edits import build as build_suite

    at_least(n, 1, "--n")
    with flag_errors("n", "format"), output_errors("--out"):
        summary = build_suite(n, seed, out_dir, _formats(fmt))
    report(summary, as_json)
