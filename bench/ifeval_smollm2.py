"""IFEval on the embedded model: build the eval, run it on ``local/smollm2``, print the metrics.

What it does
    ``gradeloop.suites.ifeval.build`` writes the eval (all 541 prompts, or ``--limit N``) to a
    temporary folder; ``gradeloop.run_eval`` runs it on ``--model`` (default ``local/smollm2``:
    greedy, up to 1280 new tokens, as lm-eval runs IFEval) into a fresh store; the four IFEval
    metrics are then recomputed from the run's output items (``scores_from_output_items``)
    and printed with the run's own per-criterion pass rates (prompt-level strict and loose).

What it prints (every table bench/RESULTS.md quotes from it)
    the run's size, time and completion tokens; the four metrics; the IFEval average
    (prompt / instruction, as model cards report it); how many responses stopped at the token
    limit (``finish_reason: length``); accuracy per instruction category (the part of the id
    before ``:``); the run's own per-criterion pass rates.

Not run in CI: all 541 prompts take hours on 2 CPU cores. ``--limit 10`` proves the path.
``--report-only HOME`` runs nothing: it prints the same tables from the newest IFEval run in
the store ``HOME/gradeloop.db`` (a ``--home`` of an earlier run, or any ``GRADELOOP_HOME``);
``--run ID`` picks another run.

    NLTK_DATA=../shared/data/nltk_data .venv/bin/python bench/ifeval_smollm2.py --limit 10
    NLTK_DATA=../shared/data/nltk_data .venv/bin/python bench/ifeval_smollm2.py --report-only /tmp/ifeval-smollm2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _report_only  # bench/_report_only.py (a script's folder is on its path)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "ifeval" / "input_data.jsonl"


def report(store: Any, run_id: str, seconds: float | None = None) -> None:
    """Print every table of the run: metrics, the IFEval average, responses at the token limit,
    per-category accuracy and the run's per-criterion pass rates."""
    from gradeloop import output_item_objects, run_summary
    from gradeloop.suites import ifeval

    summary = run_summary(store, run_id)
    items = output_item_objects(store, run_id)
    scores = ifeval.scores_from_output_items(items)
    prompts = len(scores.records)
    timing = f" in {seconds:.1f}s ({seconds / max(prompts, 1):.1f}s per prompt)" if seconds is not None else ""
    print(f"{summary['model']} (run {run_id}): {prompts} prompts{timing}, {summary['completion_tokens']} "
          f"completion tokens; sentences: {scores.sentence_splitter}")
    print(f"{'metric':<26}{'value':>8}")
    metrics = scores.metrics
    for name, value in metrics.items():
        print(f"{name:<26}{100 * value:>7.2f}%")
    for mode in ("strict", "loose"):
        average = (metrics[f"prompt_level_{mode}_acc"] + metrics[f"inst_level_{mode}_acc"]) / 2
        print(f"IFEval average (prompt / instruction), {mode}: {100 * average:.1f}")
    capped = [i for i in items if (i["sample"] or {}).get("finish_reason") == "length"]
    print(f"responses at the token limit (finish_reason length): {len(capped)} of {len(items)} "
          f"({100 * len(capped) / max(len(items), 1):.0f}%)")
    print(f"{'category':<22}{'instructions':>13}{'strict':>8}{'loose':>8}")
    for category, row in scores.per_instruction("category").items():
        print(f"{category:<22}{row['count']:>13}{100 * row['strict']:>8.1f}{100 * row['loose']:>8.1f}")
    for criterion in summary["criteria"]:
        rate = criterion["pass_rate"]
        print(f"run pass rate, {criterion['name']:<30}{'–' if rate is None else f'{100 * rate:.2f}%'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="IFEval's input_data.jsonl")
    parser.add_argument("--model", default="local/smollm2")
    parser.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--home", type=Path, default=None,
                        help="keep the eval and store here (an interrupted run resumes with gradeloop eval resume)")
    _report_only.add_options(parser, "IFEval")
    args = parser.parse_args()
    reporting = _report_only.chosen(parser, args, "ifeval", "IFEval")
    if reporting is not None:
        report(*reporting)
        return

    from gradeloop import Store, run_eval
    from gradeloop.runner import RunOptions
    from gradeloop.suites import ifeval

    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        path = ifeval.build(args.data, home / "ifeval", limit=args.limit)
        store = Store(home / "gradeloop.db")
        start = time.perf_counter()
        [run_id] = run_eval(path, [args.model], store=store, progress=True,
                            options=RunOptions(use_cache=False, concurrency=args.concurrency))
        report(store, run_id, time.perf_counter() - start)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
