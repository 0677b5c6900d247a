"""``gradeloop suite code-edits …``: build the code-edit eval, or mine one from a git repository."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .._checks import at_least
from ._common import err, flag_errors, out, output_errors, print_json
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
    n: Optional[int] = typer.Option(None, "--n", help="Items in all (1 or more): tasks drawn by the seed, each "
                                    "written once per format (default: every task in every format)."),
    seed: int = typer.Option(0, "--seed", help="Same arguments and seed give byte-identical files."),
    fmt: str = typer.Option("v4a", "--format", help=_FORMAT_HELP),
    out_dir: Path = typer.Option(..., "--out", help="Folder for eval.yaml and rows.jsonl (created if missing)."),
    as_json: bool = typer.Option(False, "--json", help="Print the paths and counts as JSON."),
) -> None:
    """Write an eval of bug fixes, features, renames and API changes over the shipped projects."""
    from ..suites.code_edits import build as build_suite

    if n is not None:
        at_least(n, 1, "--n")
    with flag_errors("n", "format"), output_errors("--out"):
        summary = build_suite(n, seed, out_dir, _formats(fmt))
    report(summary, as_json)


@app.command("from-repo")
def from_repo(
    repo: Path = typer.Argument(..., help="A git work tree (its HEAD history is mined)."),
    since: str = typer.Option(..., "--since", help="Only commits committed on or after this date (YYYY-MM-DD)."),
    max_files: int = typer.Option(3, "--max-files", help="At most this many non-test files changed per commit."),
    fmt: str = typer.Option("v4a", "--format", help=_FORMAT_HELP),
    test_command: str = typer.Option("python -m pytest -q -p no:cacheprovider", "--test-command",
                                     help="The test runner; the commit's test files are appended. \"python\" is "
                                          "the interpreter gradeloop runs on."),
    timeout: float = typer.Option(120, "--timeout", help="Seconds each test run may take in the sandbox."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for eval.yaml, rows.jsonl, trees/ and skipped.jsonl."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary (with every skipped commit) as JSON."),
) -> None:
    """Turn recent small commits with tests into verified code-edit tasks; list the ones left out and why."""
    from ..suites.code_edits_repo import mine

    at_least(max_files, 1, "--max-files")
    with flag_errors("since", "format", "max_files", "test_command"), output_errors("--out"):
        summary = mine(repo, since, out_dir, max_files=max_files, formats=_formats(fmt), test_command=test_command,
                       timeout=timeout, progress=None if as_json else err.print)
    if as_json:
        print_json(summary)
        return
    for entry in summary["skipped"]:
        out.print(f"skipped {entry['commit'][:10]} {entry['subject'][:60]!r}: {entry['reason']}")
    out.print(f"{summary['verified']} of {summary['candidates']} commits verified; "
              f"{len(summary['skipped'])} skipped (listed in {summary['skipped_file']})")
    report(summary, False)
