"""Grader throughput: grades/s for string_check, every text_similarity metric, and the python
grader with warm workers (a fork of a warm zygote per grade) next to a fresh sandboxed
subprocess per grade.

Each row grades ``--n`` (default 500) ``(sample, item)`` pairs of 8–30 words through
``gradeloop.graders.grade_many`` (the path eval runs and RFT rewards take), after one warm-up
call that loads models and starts workers; the time of that first call is shown apart.
The cold python row grades ``--cold-n`` (default 30) pairs, each in a new subprocess.

Target (issue 3): a trivial python grader at 200 grades/s or more on 2 cores.

    .venv/bin/python bench/graders.py
    .venv/bin/python bench/graders.py --n 2000 --only python
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time

from gradeloop.graders import grade_many
from gradeloop.graders._python import grade_python_cold
from gradeloop.spec import SIMILARITY_METRICS, Document, load_grader
from gradeloop.templating import sample_namespace

WORDS = ("the quick brown fox jumps over a lazy dog while support agents answer billing questions about "
         "refunds orders passwords shipping labels and late deliveries every single day").split()
TRIVIAL_PY = "def grade(sample, item):\n    return 1.0 if item['reference'] in sample['output_text'] else 0.0\n"


def pairs(n: int, seed: int = 0) -> list[tuple[dict, dict]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        reference = " ".join(rng.choices(WORDS, k=rng.randint(8, 30)))
        words = reference.split()
        rng.shuffle(words)
        output = " ".join(words[: max(1, len(words) - rng.randint(0, 5))])
        out.append((sample_namespace(output), {"reference": reference}))
    return out


def grader(data: dict):
    return load_grader(data, Document(data=data, file="<bench>"))


def graders(only: str | None) -> list[tuple[str, object]]:
    rows = [("string_check", grader({"type": "string_check", "name": "s", "input": "{{ sample.output_text }}",
                                     "reference": "{{ item.reference }}", "operation": "ilike"}))]
    for metric in SIMILARITY_METRICS:
        rows.append((f"text_similarity {metric}", grader({
            "type": "text_similarity", "name": metric, "input": "{{ sample.output_text }}",
            "reference": "{{ item.reference }}", "evaluation_metric": metric})))
    rows.append(("python (warm workers)", grader({"type": "python", "name": "py", "source": TRIVIAL_PY})))
    return [(label, g) for label, g in rows if not only or only in label]


def measure(g, data: list[tuple[dict, dict]]) -> tuple[float, float]:
    """(first-call seconds, grades/s after it)."""
    t0 = time.perf_counter()
    asyncio.run(grade_many(g, data[:1]))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = asyncio.run(grade_many(g, data))
    elapsed = time.perf_counter() - t0
    assert len(results) == len(data) and not any(r.errors for r in results), results[0].errors
    return first, len(data) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--cold-n", type=int, default=30)
    parser.add_argument("--only", default=None, help="only rows whose label contains this")
    args = parser.parse_args()
    data = pairs(args.n)
    print(f"grader throughput: {args.n} pairs of 8-30 words, cpu_count={os.cpu_count()}")
    print(f"{'grader':<32}{'grades/s':>12}{'first call s':>14}")
    print("-" * 58)
    rates = {}
    for label, g in graders(args.only):
        first, rate = measure(g, data)
        rates[label] = rate
        print(f"{label:<32}{rate:>12,.0f}{first:>14.2f}")
    if not args.only or "python" in args.only:
        g = dict(graders("python"))["python (warm workers)"]
        t0 = time.perf_counter()
        for sample, item in data[: args.cold_n]:
            result = grade_python_cold(g, sample, item)
            assert not result.errors, result.errors
        rate = args.cold_n / (time.perf_counter() - t0)
        print(f"{'python (fresh subprocess each)':<32}{rate:>12,.1f}{'':>14}")
        warm = rates.get("python (warm workers)")
        if warm:
            verdict = "met" if warm >= 200 else "NOT met"
            print(f"target (trivial python grader >= 200 grades/s with warm workers): {verdict} ({warm:,.0f}/s, "
                  f"{warm / rate:.0f}x a fresh subprocess per grade)")


if __name__ == "__main__":
    main()
