"""IFEval on the embedded model: build the eval, run it on ``local/smollm2``, print the metrics.

What it does
    ``gradeloop.suites.ifeval.build`` writes the eval (all 541 prompts, or ``--limit N``) to a
    temporary folder; ``gradeloop.run_eval`` runs it on ``--model`` (default ``local/smollm2``:
    greedy, up to 1280 new tokens, as lm-eval runs IFEval) into a fresh store; the four IFEval
    metrics are then recomputed from the run's output items (``scores_from_output_items``)
    and printed with the run's own per-criterion pass rates (prompt-level strict and loose).

Not run in CI: all 541 prompts take hours on 2 CPU cores. ``--limit 10`` proves the path.

    NLTK_DATA=../shared/data/nltk_data .venv/bin/python bench/ifeval_smollm2.py --limit 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "ifeval" / "input_data.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="IFEval's input_data.jsonl")
    parser.add_argument("--model", default="local/smollm2")
    parser.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--home", type=Path, default=None,
                        help="keep the eval and store here (an interrupted run resumes with gradeloop eval resume)")
    args = parser.parse_args()

    from gradeloop import Store, output_item_objects, run_eval, run_summary
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
        seconds = time.perf_counter() - start
        summary = run_summary(store, run_id)
        scores = ifeval.scores_from_output_items(output_item_objects(store, run_id))
    prompts = len(scores.records)
    print(f"{args.model}: {prompts} prompts in {seconds:.1f}s ({seconds / max(prompts, 1):.1f}s per prompt), "
          f"{summary['completion_tokens']} completion tokens; sentences: {scores.sentence_splitter}")
    print(f"{'metric':<26}{'value':>8}")
    for name, value in scores.metrics.items():
        print(f"{name:<26}{100 * value:>7.2f}%")
    for criterion in summary["criteria"]:
        rate = criterion["pass_rate"]
        print(f"run pass rate, {criterion['name']:<30}{'–' if rate is None else f'{100 * rate:.2f}%'}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
