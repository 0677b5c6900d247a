"""The ``gradeloop`` command: a thin typer layer over the Python API."""

from __future__ import annotations

import sys

import typer

from ..errors import GradeloopError
from ..redact import scrub_std_streams
from . import _eval, _grade, _harvest, _proxy, _serve, _suite, _tune
from . import _eval_decide  # noqa: F401  (registers eval recommend | cusp | health)
from . import _view  # registers eval report
from ._common import err, fail, usage_line

app = typer.Typer(
    name="gradeloop",
    help="Evals in OpenAI's formats on any model: run, grade, compare, fine-tune.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(_eval.app, name="eval")
app.add_typer(_grade.app, name="grade")
app.add_typer(_suite.app, name="suite")
app.add_typer(_tune.app, name="tune")
app.add_typer(_harvest.app, name="harvest")
app.command("serve")(_serve.serve_command)
app.command("proxy")(_proxy.proxy_command)
app.command("view")(_view.view_command)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"gradeloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Evals in OpenAI's formats on any model."""


_MULTI_VALUE = ("--hyperparameters", "--option")


def join_key_values(argv: list[str]) -> list[str]:
    """``--hyperparameters n_epochs=1 eval_interval=10`` (as OpenAI's docs write it) → one value:
    the key=value words after such an option are joined with spaces."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        out.append(argv[i])
        if argv[i] in _MULTI_VALUE:
            words = []
            while i + 1 < len(argv) and "=" in argv[i + 1] and not argv[i + 1].startswith("-"):
                words.append(argv[i + 1])
                i += 1
            out.append(" ".join(words))
        i += 1
    return out


def main() -> None:
    """Entry point: runs the app; gradeloop errors print one line and exit 1 or 2. Everything it
    prints (tables, progress, warnings, tracebacks) goes through the secret scrubber."""
    scrub_std_streams()
    try:
        code = app(args=join_key_values(sys.argv[1:]), standalone_mode=False)
    except GradeloopError as exc:
        fail(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted; finished work is stored (resume with: gradeloop eval resume RUN_ID)")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # click's usage errors (typer vendors click from 0.2x on)
        if not (hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError" or not hasattr(exc, "ctx"):
            exc.show()  # the help text, or a non-usage error
        else:
            fail(usage_line(exc))
        sys.exit(exc.exit_code)
    # without standalone mode typer returns the code of typer.Exit instead of exiting
    sys.exit(code if isinstance(code, int) else 0)
