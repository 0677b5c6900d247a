"""The agents suite on the embedded model: build it, run it on ``local/smollm2``, print the metrics.

What it does
    ``gradeloop.suites.agents.build`` writes the suite (``--n`` tasks, alternating order desk and
    calendar, ``--ambiguous-share`` of them ambiguous, once per ``--variants`` prompt variant) to
    ``HOME/agents``; the one change to the written ``eval.yaml`` is
    ``data_source.sampling_params.temperature``, set to ``--temperature`` (the suite writes 0,
    which would make every epoch of a local model the same episode and pass^k equal to pass@1;
    no ``seed`` is set, so each episode samples afresh and a rerun gives other episodes).
    ``gradeloop.run_eval`` then runs it on ``--model`` with ``--epochs`` and ``--tool-fault-rate``
    into the store ``HOME/gradeloop.db`` (``GRADELOOP_HOME`` is set to HOME; default
    ``/tmp/gradeloop-agents-smollm2``), uncached.

What it prints (every table bench/RESULTS.md quotes from it)
    the run's size, time and the criteria's pass rates; pass@k and pass^k overall and by ``env``,
    ``prompt_variant``, ``ambiguous`` and ``kind``; episode counts (turns and tool calls per
    episode, failed calls, injected faults, stop reasons) overall and by env / prompt variant;
    success with and without injected faults (unpaired and on the same items); recovery,
    gave-up and cut-off counts (any failed call, and injected faults only); clarification
    precision and recall; and what the model did with the tools: episodes with any call, calls
    per tool, call errors by type, how each episode's first move went (a call, a question, an
    answer) and what followed a tool result.

``--report-only HOME`` runs nothing: it prints the same tables from the newest agents-suite run
in ``HOME/gradeloop.db``; ``--run ID`` picks another run.

    .venv/bin/python bench/agents_smollm2.py --n 2 --variants none --epochs 2     # 4 episodes: ~10 min on a loaded 2-core CPU
    .venv/bin/python bench/agents_smollm2.py --report-only /tmp/gradeloop-agents-smollm2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import _report_only  # bench/_report_only.py (a script's folder is on its path)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HOME = Path("/tmp/gradeloop-agents-smollm2")
BY = ("env", "prompt_variant", "ambiguous", "kind")


def set_temperature(eval_yaml: Path, temperature: float) -> None:
    """Rewrite the built eval's ``sampling_params.temperature`` (the only change to the suite)."""
    import yaml

    definition = yaml.safe_load(eval_yaml.read_text(encoding="utf-8"))
    definition["data_source"]["sampling_params"]["temperature"] = temperature
    eval_yaml.write_text(yaml.safe_dump(definition, sort_keys=False, allow_unicode=True), encoding="utf-8")


def pct(value: float | None) -> str:
    """A share as a percentage with one decimal, or ``–`` when undefined."""
    return "–" if value is None else f"{100 * value:.1f}%"


def print_consistency(table: dict[str, Any]) -> None:
    """pass@k and pass^k overall and per value of each grouping field."""
    ks, top = table["k"], str(table["epochs"])
    print(f"pass@k / pass^k over {table['items']} items x {table['epochs']} epochs "
          f"(left out, an epoch errored or did not run: {table['skipped_items']})")
    print(f"{'k':>3}{'pass@k':>9}{'pass^k':>9}")
    for k in ks:
        print(f"{k:>3}{pct(table['overall']['pass_at_k'][str(k)]):>9}{pct(table['overall']['pass_hat_k'][str(k)]):>9}")
    for field, rows in table["by"].items():
        print(f"\nby {field}")
        print(f"{field:<16}{'items':>6}{'pass@1':>9}{'pass@' + top:>9}{'pass^' + top:>9}")
        for row in rows:
            print(f"{str(row['value']):<16}{row['items']:>6}{pct(row['pass_at_k']['1']):>9}"
                  f"{pct(row['pass_at_k'][top]):>9}{pct(row['pass_hat_k'][top]):>9}")


def episode_row(label: str, m: dict[str, Any]) -> str:
    """One line of the episode table: counts, turns and calls per episode, failures, stop reasons."""
    e = m["episodes"]
    stops = ", ".join(f"{k} {v}" for k, v in e["stop_reasons"].items())
    return (f"{label:<26}{e['episodes']:>5}{e['turns_mean']:>7.2f}{e['tool_calls_mean']:>7.2f}"
            f"{e['failed_calls']:>8}{e['injected_faults']:>9}  {stops}")


def print_agent(summary: dict[str, Any]) -> None:
    """Episode counts, success with and without faults, grit and ask-or-assume, overall and by group."""
    print(f"{'episodes':<26}{'n':>5}{'turns':>7}{'calls':>7}{'failed':>8}{'injected':>9}  stop reasons")
    print(episode_row("all", summary))
    for field in ("env", "prompt_variant"):
        for row in summary["by"].get(field, []):
            print(episode_row(f"{field}={row['value']}", row))
    f = summary["faults"]
    print("\nsuccess with / without injected faults")
    for side in ("with_faults", "without_faults"):
        s = f[side]
        print(f"  {side:<15} {s['passed']:>5} of {s['episodes']:>5} episodes  {pct(s['rate'])}")
    p = f["paired"]
    diff = "–" if p["difference"] is None else f"{100 * p['difference']:+.1f} points"
    print(f"  same items ({p['items']} with episodes of both kinds): with {pct(p['with_faults'])}, "
          f"without {pct(p['without_faults'])}, difference {diff}")
    for key, label in (("grit", "after any failed call"), ("grit_injected", "after an injected fault")):
        g = summary[key]
        print(f"grit, {label}: {g['episodes_with_failure']} episodes; recovered {g['recovered']}, gave up "
              f"{g['gave_up']}, answered {g['answered']}, cut off {g['cut_off']}; recovery rate "
              f"{pct(g['recovery_rate'])}, gave-up rate {pct(g['gave_up_rate'])}")
    c = summary["clarification"]
    if c:
        print(f"ask or assume: {c['ambiguous_episodes']} ambiguous / {c['clear_episodes']} clear episodes; asked on "
              f"ambiguous {c['true_positive']}, on clear {c['false_positive']}; precision {pct(c['precision'])}, "
              f"recall {pct(c['recall'])}")
        for field in ("env", "prompt_variant"):
            for row in summary["by"].get(field, []):
                rc = row.get("clarification") or {}
                print(f"  {field + '=' + str(row['value']):<26} precision {pct(rc.get('precision')):>7}  "
                      f"recall {pct(rc.get('recall')):>7}  (asked on clear {rc.get('false_positive')})")


def first_move(trajectory: dict[str, Any]) -> str:
    """How an episode began: a call (which tool), a question in text, or a text answer."""
    calls = [c for c in trajectory.get("tool_calls") or [] if c.get("turn") == 1]
    if calls:
        return "call " + ("ask_user" if calls[0]["name"] == "ask_user" else "another tool")
    return "question in text" if trajectory.get("asked") else "text answer"


def after_result(trajectory: dict[str, Any]) -> list[str]:
    """For each turn that followed a tool result: did the model call again or answer in text?"""
    turns = sorted({int(c.get("turn") or 0) for c in trajectory.get("tool_calls") or []})
    later = {int(c.get("turn") or 0) for c in trajectory.get("tool_calls") or []}
    moves = []
    for turn in turns:
        if turn + 1 in later:
            moves.append("another call")
        elif trajectory.get("stop_reason") == "answer" and turn == max(turns):
            moves.append("a text answer")
        else:
            moves.append("nothing (episode ended: " + str(trajectory.get("stop_reason")) + ")")
    return moves


def print_behaviour(items: list[dict[str, Any]]) -> None:
    """What the model did with the tools, counted from the stored trajectories."""
    trajectories = [((o.get("sample") or {}).get("trajectory"), o) for o in items]
    trajectories = [(t, o) for t, o in trajectories if isinstance(t, dict)]
    n = len(trajectories)
    calls = [c for t, _ in trajectories for c in t.get("tool_calls") or []]
    with_call = sum(bool(t.get("tool_calls")) for t, _ in trajectories)
    print(f"episodes with at least one tool call: {with_call} of {n} ({pct(with_call / max(n, 1))}); "
          f"tool calls in all: {len(calls)}")
    errors = Counter((c.get("error") or {}).get("type") or "ok" for c in calls)
    print("call outcomes: " + ", ".join(f"{k} {v}" for k, v in errors.most_common()))
    print("calls per tool: " + ", ".join(f"{k} {v}" for k, v in Counter(c["name"] for c in calls).most_common()))
    print("first move: " + ", ".join(f"{k} {v}" for k, v in
                                     Counter(first_move(t) for t, _ in trajectories).most_common()))
    follow = Counter(m for t, _ in trajectories for m in after_result(t))
    print("after a tool result: " + (", ".join(f"{k} {v}" for k, v in follow.most_common()) or "(no tool result)"))
    finish = Counter(str((o.get("sample") or {}).get("finish_reason")) for _, o in trajectories)
    print("last reply's finish reason: " + ", ".join(f"{k} {v}" for k, v in finish.most_common())
          + " (length: cut at max_completion_tokens)")
    status = Counter((o["item"].get("no_change"), o["status"]) for _, o in trajectories)
    print("passes on tasks the policy forbids (right outcome: change nothing): "
          f"{status[(True, 'pass')]} of {status[(True, 'pass')] + status[(True, 'fail')]}; on the others: "
          f"{status[(False, 'pass')]} of {status[(False, 'pass')] + status[(False, 'fail')]}")


def report(store: Any, run_id: str, seconds: float | None = None) -> None:
    """Print every table of the run (see the module docstring)."""
    from gradeloop import run_summary
    from gradeloop.report import agent_summary, consistency_summary

    summary = run_summary(store, run_id)
    run = store.get_run(run_id)
    definition = store.get_eval(run["eval_id"])["definition"]
    meta, params = definition.get("metadata") or {}, run["data_source"]["sampling_params"]
    config = run["config"] or {}
    timing = f" in {seconds / 60:.1f} min" if seconds is not None else ""
    print(f"{summary['model']} (run {run_id}){timing}: suite n={meta.get('n')} seed={meta.get('seed')} "
          f"variants={','.join(meta.get('variants') or [])} ambiguous_share={meta.get('ambiguous_share')}; "
          f"epochs {config.get('epochs')}, temperature {params.get('temperature')}, "
          f"tool fault rate {config.get('tool_fault_rate')}; {summary['completion_tokens']} completion tokens")
    for criterion in summary["criteria"]:
        rate = criterion["pass_rate"]
        print(f"pass rate, {criterion['name']:<22}{pct(rate):>7}")
    consistency = consistency_summary(store, run_id, by=BY)
    if consistency:
        print()
        print_consistency(consistency)
    agent = agent_summary(store, run_id, by=("env", "prompt_variant"))
    if agent:
        print()
        print_agent(agent)
    print()
    print_behaviour(store.output_items(run_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="local/smollm2")
    parser.add_argument("--n", type=int, default=6, help="tasks (alternating order desk and calendar)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--variants", default="none,all", help="prompt variants, comma-separated")
    parser.add_argument("--ambiguous-share", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=0.7,
                        help="replaces the suite's temperature 0 in the built eval.yaml")
    parser.add_argument("--tool-fault-rate", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME,
                        help=f"GRADELOOP_HOME for the run: the eval in HOME/agents, the store HOME/gradeloop.db "
                             f"(default {DEFAULT_HOME})")
    _report_only.add_options(parser, "agents-suite")
    args = parser.parse_args()
    reporting = _report_only.chosen(parser, args, "agents", "agents-suite")
    if reporting is not None:
        report(*reporting)
        return

    from gradeloop import Store, run_eval
    from gradeloop.runner import RunOptions
    from gradeloop.suites import agents

    args.home.mkdir(parents=True, exist_ok=True)
    os.environ["GRADELOOP_HOME"] = str(args.home)
    built = agents.build(args.n, args.seed, args.home / "agents", ambiguous_share=args.ambiguous_share,
                         variants=args.variants.split(","))
    set_temperature(Path(built["eval"]), args.temperature)
    print(f"built {built['rows']} items in {args.home / 'agents'}: {built['counts']}", flush=True)
    store = Store(args.home / "gradeloop.db")
    start = time.perf_counter()
    [run_id] = run_eval(built["eval"], [args.model], store=store, progress=sys.stderr.isatty(),
                        options=RunOptions(use_cache=False, epochs=args.epochs, concurrency=args.concurrency,
                                           tool_fault_rate=args.tool_fault_rate))
    report(store, run_id, time.perf_counter() - start)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
