"""``gradeloop suite if-categories …`` (placeholder until the generator lands)."""

import typer

app = typer.Typer(help="The six instruction-following categories of real API use.", no_args_is_help=True)
