"""Build time and peak memory of one long-context sample (issue 14), and what a run stores of it.

What it measures
    For MRCR (8 needles) and Graphwalks (BFS) at 8k, 128k and 1M tokens (``--tokens``), one
    item built by ``generate_item`` in a fresh interpreter per cell, with o200k_base:

    build s     wall time of one build after the tokenizer is loaded and warmed (best of
                ``--repeat``); the tokenizer's load time is shown apart (it is paid once per process)
    traced MB   tracemalloc's peak of Python allocations during a second build
    RSS MB      the process's peak resident memory (``resource.getrusage``) after both builds,
                interpreter and tokenizer included
    tokens      the item's length counted with the same tokenizer

    ``--store`` also runs one 128k MRCR item through the scripted provider with 2 models x 3
    epochs (a temporary GRADELOOP_HOME) and prints the bytes each store table holds: what a long
    item costs the store per model and per epoch.

Target (issue 14): under 2 s and under 1 GB for one 1M-token sample.

    PYTHONPATH=src .venv/bin/python bench/long_context.py [--store]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, tracemalloc
from gradeloop.suites._tokens import get_tokenizer
suite, target, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if suite == "mrcr":
    from gradeloop.suites.mrcr import generate_item
    args = (target, 8)
else:
    from gradeloop.suites.graphwalks import generate_item
    args = (target, "bfs")
start = time.perf_counter()
tok = get_tokenizer()
tok.count("warm up the encoder")
load = time.perf_counter() - start
best = None
for r in range(repeat):
    start = time.perf_counter()
    item = generate_item(*args, f"bench:{r}", tok)
    best = min(best or 1e9, time.perf_counter() - start)
tracemalloc.start()
generate_item(*args, "bench:traced", tok)
traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"load": load, "build": best, "traced": traced, "rss": rss, "tokens": item["n_tokens"]}))
"""


def cell(suite: str, target: int, repeat: int) -> dict:
    """One suite and length, measured in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", CHILD, suite, str(target), str(repeat)], capture_output=True,
                         text=True, check=True, env=os.environ)
    return json.loads(out.stdout.strip().splitlines()[-1])


def store_cost() -> None:
    """Bytes per store table after one 128k MRCR item, 2 scripted models x 3 epochs."""
    import sqlite3

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GRADELOOP_HOME": str(Path(tmp) / "home")}
        run = [sys.executable, "-m", "gradeloop"]
        subprocess.run([*run, "suite", "mrcr", "build", "--tokens", "128k", "--needles", "2", "--n", "1",
                        "--out", f"{tmp}/suite"], check=True, env=env, capture_output=True)
        rules = Path(tmp) / "rules.jsonl"
        rules.write_text('{"response": "no"}\n')
        subprocess.run([*run, "eval", "run", f"{tmp}/suite/eval.yaml", "--model", f"scripted/{rules}",
                        "--model", "scripted/echo", "--epochs", "3", "--no-progress"], check=True, env=env,
                       capture_output=True)
        item = Path(f"{tmp}/suite/rows.jsonl").stat().st_size
        db = sqlite3.connect(Path(tmp) / "home" / "gradeloop.db")
        print(f"\none 128k-token MRCR item: rows.jsonl {item / 1e6:.2f} MB; store after 2 models x 3 epochs:")
        print(f"{'table.column':<24}{'rows':>6}{'MB':>9}")
        total = 0
        for table, column in [("run_items", "item"), ("samples", "input"), ("model_calls", "request"),
                              ("model_calls", "response"), ("output_items", "*"), ("response_cache", "*"),
                              ("inputs", "*")]:
            cols = [r[1] for r in db.execute(f"pragma table_info({table})")] if column == "*" else [column]
            if not cols:
                continue  # a store older than the table
            size = "+".join(f"coalesce(length({c}),0)" for c in cols)
            rows, size = db.execute(f"select count(*), sum({size}) from {table}").fetchone()
            total += size or 0
            print(f"{table + '.' + column:<24}{rows:>6}{(size or 0) / 1e6:>9.2f}")
        print(f"{'total':<24}{'':>6}{total / 1e6:>9.2f}  ({total / item:.1f}x the item)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", default="8192,131072,1048576")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", action="store_true")
    args = parser.parse_args()
    print(f"{'suite':<11}{'tokens':>9}{'build s':>9}{'load s':>8}{'traced MB':>11}{'RSS MB':>8}{'length':>9}")
    for suite in ("mrcr", "graphwalks"):
        for target in (int(t) for t in args.tokens.split(",")):
            r = cell(suite, target, args.repeat)
            print(f"{suite:<11}{target:>9}{r['build']:>9.3f}{r['load']:>8.2f}{r['traced'] / 1e6:>11.1f}"
                  f"{r['rss'] / 1e6:>8.0f}{r['tokens']:>9}")
    if args.store:
        store_cost()


if __name__ == "__main__":
    main()
