"""``gradeloop suite …``: built-in eval suites. Each suite adds its own sub-app here."""

from __future__ import annotations

import typer

app = typer.Typer(help="Built-in eval suites: build eval files, score responses.", no_args_is_help=True)


def _register() -> None:
    from . import (_suite_agents, _suite_categories, _suite_code_edits, _suite_graphwalks, _suite_ifeval,
                   _suite_long, _suite_mrcr)

    app.add_typer(_suite_ifeval.app, name="ifeval")
    app.add_typer(_suite_categories.app, name="if-categories")
    app.add_typer(_suite_mrcr.app, name="mrcr")
    app.add_typer(_suite_graphwalks.app, name="graphwalks")
    app.add_typer(_suite_long.needles_app, name="needles")
    app.add_typer(_suite_long.grounding_app, name="grounding")
    app.add_typer(_suite_agents.app, name="agents")
    app.add_typer(_suite_code_edits.app, name="code-edits")


_register()
