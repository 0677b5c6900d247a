"""``gradeloop suite ifeval …`` (placeholder until the IFEval suite lands)."""

import typer

app = typer.Typer(help="IFEval: score responses, build an eval any model can run.", no_args_is_help=True)
