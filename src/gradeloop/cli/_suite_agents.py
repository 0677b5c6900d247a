"""``gradeloop suite agents build``: the built-in agent tasks (order desk, calendar) as an eval directory."""

from __future__ import annotations

from pathlib import Path

import typer

from .._checks import at_least
from ._common import flag_errors, output_errors
from ._suite_mrcr import report

app = typer.Typer(help="Agent tasks with tools, a state and a policy (order desk, calendar): build an eval.",
                  no_args_is_help=True)


@app.command("build")
def build(
    n: int = typer.Option(60, "--n", help="Tasks (1 or more), taken in turn from the environments; each is "
                          "written once per prompt variant."),
    seed: int = typer.Option(0, "--seed", help="Same arguments and seed give byte-identical files."),
    env: str = typer.Option("order_desk,calendar", "--env", help="Environments, comma-separated: order_desk, "
                            "calendar."),
    ambiguous_share: float = typer.Option(0.25, "--ambiguous-share", help="Share of each environment's tasks "
                                          "that miss a detail, so the right first move is ask_user (0 to 1)."),
    variants: str = typer.Option("none,persistence,tools,planning,all", "--variants",
                                 help="Prompt variants, comma-separated: none, persistence, tools, planning, all."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for eval.yaml, data.jsonl and tools.py (created if "
                                 "missing)."),
    as_json: bool = typer.Option(False, "--json", help="Print the paths and counts as JSON."),
) -> None:
    """Write an agents eval (eval.yaml with an agent: block, data.jsonl, tools.py), graded on the end state,
    asking when needed and no forbidden call; items carry env, kind, ambiguous, no_change, prompt_variant,
    state, expected_state and reference_calls. Run it with several epochs and tool faults:
    gradeloop eval run DIR/eval.yaml -m MODEL --epochs 4 --tool-fault-rate 0.2 (docs/agents-suite.md)."""
    from ..suites._long import parse_list
    from ..suites.agents import ENVS, VARIANTS
    from ..suites.agents import build as build_agents

    at_least(n, 1, "--n")
    with flag_errors("env", "variants", "ambiguous_share"), output_errors("--out"):
        summary = build_agents(n, seed, out_dir, envs=parse_list(env, ENVS, "env"),
                               ambiguous_share=ambiguous_share, variants=parse_list(variants, VARIANTS, "variants"))
    report(summary, as_json)
