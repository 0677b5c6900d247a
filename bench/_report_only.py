"""``--report-only HOME [--run ID]`` for the bench scripts that run a built-in suite: the flags,
and the store and run they name (the newest run of the suite's evals unless ``--run`` says)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_options(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--report-only HOME`` and ``--run ID`` (``what``: the suite's name in the help)."""
    parser.add_argument("--report-only", type=Path, default=None, metavar="HOME",
                        help=f"run nothing: print the tables of the newest {what} run in HOME/gradeloop.db")
    parser.add_argument("--run", default=None, help="with --report-only: this run instead of the newest")


def suite_run(store: Any, suite: str) -> str | None:
    """The newest run in the store of an eval whose ``metadata.suite`` is ``suite``, or None."""
    for run in store.list_runs(limit=10_000):
        if (store.get_eval(run["eval_id"])["definition"].get("metadata") or {}).get("suite") == suite:
            return run["id"]
    return None


def chosen(parser: argparse.ArgumentParser, args: argparse.Namespace, suite: str, what: str) -> tuple[Any, str] | None:
    """With ``--report-only``: the store and the run to report (argparse's exit 2 with one line
    when the store or run is missing); None when the script should run."""
    if args.report_only is None:
        return None
    db = args.report_only / "gradeloop.db"
    if not db.is_file():
        parser.error(f"--report-only: {db} does not exist")
    from gradeloop import Store
    from gradeloop.errors import NotFoundError

    store = Store(db)
    try:
        run_id = store.resolve_run_id(args.run) if args.run else suite_run(store, suite)
    except NotFoundError as exc:
        parser.error(f"--run: {exc}")
    if run_id is None:
        parser.error(f"--report-only: {db} holds no {what} run")
    return store, run_id
