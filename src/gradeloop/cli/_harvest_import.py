"""``gradeloop harvest import FILE``: logs, exports, fine-tuning files, llm's logs.db and OTel
spans into harvested records (redacted unless --no-redact)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from ._common import err, open_store, out, print_json
from ._harvest import app

if TYPE_CHECKING:
    from ..harvest import Redactor

_LISTED = 10  # skipped rows shown in the text output


def _redactor(no_redact: bool, patterns: list[str], region: str | None) -> Redactor | None:
    from ..harvest import make_redactor

    if no_redact:
        err.print("[bold red]warning: --no-redact: texts are stored exactly as they are in the file, with any e-mail "
                  "addresses, phone numbers, card numbers, API keys and other secrets they hold[/]")
    return make_redactor(not no_redact, patterns, region)


@app.command("import")
def import_command(
    file: Path = typer.Argument(..., help="The file: JSONL, OTLP/JSON or llm's logs.db.", show_default=False),
    fmt: Optional[str] = typer.Option(None, "--format", help="chat, batch, stored, responses, sft, dpo, rft, llm, otel or map "
                            "(detected when left out)."),
    maps: list[str] = typer.Option([], "--map", help="FIELD=PATH for any JSONL, e.g. user=question.text "
                                   "(fields: messages, system, user, output, model, created_at, …)."),
    tags: list[str] = typer.Option([], "--tag", help="Tag every imported record (repeatable)."),
    no_redact: bool = typer.Option(False, "--no-redact", help="Store texts unredacted (personal data and secrets "
                                   "included)."),
    patterns: list[str] = typer.Option([], "--redact-pattern", help="Also redact what this regex matches "
                                       "(repeatable)."),
    region: Optional[str] = typer.Option(None, "--redact-region", help="Region for phone numbers written without "
                                         "a country code (ISO code, default US)."),
    batch_input: Optional[Path] = typer.Option(None, "--batch-input", help="The Batch API input file whose request bodies "
                                     "FILE's output lines answer (joined by custom_id)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Import real traffic from FILE: each row becomes a record (duplicates counted, rows seen
    before skipped, bad rows reported with file:line and why)."""
    from ..harvest import import_file
    from ..harvest._importers import parse_maps

    redactor = _redactor(no_redact, patterns, region)
    result = import_file(open_store(), file, format=fmt, maps=parse_maps(maps), tags=tags, redactor=redactor,
                         batch_input=batch_input)
    if as_json:
        print_json(result.as_dict())
        return
    out.print(f"{result.file} ({result.format}): {result.report.summary()}", markup=False)
    for where, why in result.report.skipped[:_LISTED]:
        out.print(f"  skipped {where}: {why}", markup=False)
    if len(result.report.skipped) > _LISTED:
        out.print(f"  … and {len(result.report.skipped) - _LISTED} more skipped (--json lists them)", markup=False)
