"""IFEval verifier speed and agreement: gradeloop next to the reference implementation.

What it measures
    Every instruction of IFEval's 541 prompts, strict and loose, on the published GPT-4
    responses (``--responses`` to use another file), with:

    gradeloop   ``gradeloop.suites.ifeval.score`` in this interpreter
    reference   Google's checkers (the ``instruction_following_eval`` code as packaged by
                ``if-verifiable`` on PyPI, or lm-eval's ``lm_eval.tasks.ifeval``) run by a
                small script in ``--reference-python`` (an interpreter of a throwaway venv),
                driven exactly as Google's ``evaluation_lib`` drives them: a checker built
                per instruction, ``build_description(**kwargs)``, a strict pass, then a loose
                pass over the eight variants. ``nltk.download`` is made a no-op (data comes
                from ``NLTK_DATA``), ``langdetect.DetectorFactory.seed = 0`` and
                ``random.seed(0)`` are set first.

    responses/s is responses / wall time of one strict + loose pass over all of them, after
    a warm-up pass (which loads Punkt and langdetect's profiles) and with gradeloop's memo
    caches cleared; the best of ``--repeat`` runs is shown. Agreement is
    the share of instruction verdicts (strict and loose) that are equal.

Also writes the reference's verdicts (``--write-reference FILE``, one
``{"key", "strict", "loose"}`` line per prompt); tests/data/ holds the ones the tests use.

Target (issue 4): gradeloop 5x faster or more at >= 99.5% agreement.

    NLTK_DATA=../shared/data/nltk_data .venv/bin/python bench/ifeval_speed.py \\
        --reference-python /tmp/ifref/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "ifeval"

# Runs in the reference's interpreter: argv[1] is a JSON object {inputs, responses, repeat, skip}.
REFERENCE_SCRIPT = r'''
import importlib.metadata as md, json, platform, random, sys, time

import nltk

nltk.download = lambda *args, **kwargs: True  # never fetch: punkt_tab comes from NLTK_DATA
try:
    from if_verifiable.ifeval import instructions_registry as registry
    package = "if-verifiable"
except ImportError:
    from lm_eval.tasks.ifeval import instructions_registry as registry
    package = "lm-eval"
import langdetect

langdetect.DetectorFactory.seed = 0
args = json.loads(sys.argv[1])
inputs = [json.loads(line) for line in open(args["inputs"], encoding="utf-8") if line.strip()]
responses = {}
for line in open(args["responses"], encoding="utf-8"):
    if line.strip():
        record = json.loads(line)
        responses[record["prompt"]] = record["response"]
inputs = [i for i in inputs if i["prompt"] in responses]


def variants(response):
    lines = response.split("\n")
    first, last, both = ("\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(),
                         "\n".join(lines[1:-1]).strip())
    return [response, response.replace("*", ""), first, last, both,
            first.replace("*", ""), last.replace("*", ""), both.replace("*", "")]


def verdicts(inp, loose):
    response = responses[inp["prompt"]]
    candidates = variants(response) if loose else [response]
    out = []
    for index, instruction_id in enumerate(inp["instruction_id_list"]):
        checker = registry.INSTRUCTION_DICT[instruction_id](instruction_id)
        checker.build_description(**inp["kwargs"][index])
        instruction_args = checker.get_instruction_args()
        if instruction_args and "prompt" in instruction_args:
            checker.build_description(prompt=inp["prompt"])
        out.append(any(bool(c.strip() and checker.check_following(c)) for c in candidates))
    return out


def run(rows):
    strict = [verdicts(i, False) for i in rows]
    loose = [verdicts(i, True) for i in rows]
    return strict, loose


run(inputs)  # warm-up: Punkt and langdetect's profiles load here
best = None
for _ in range(args["repeat"]):
    random.seed(0)
    start = time.perf_counter()
    strict, loose = run(inputs)
    seconds = time.perf_counter() - start
    best = seconds if best is None else min(best, seconds)
records = [{"key": i["key"], "strict": s, "loose": lo} for i, s, lo in zip(inputs, strict, loose)]
versions = {"python": platform.python_version()}
for name in (package, "nltk", "langdetect"):
    versions[name] = md.version(name)
print(json.dumps({"package": package, "versions": versions, "seconds": best, "records": records}))
'''


def run_reference(python: str, inputs: Path, responses: Path, repeat: int) -> dict:
    """The reference's verdicts and best time, from a subprocess in ``python``."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(REFERENCE_SCRIPT)
    try:
        argument = json.dumps({"inputs": str(inputs), "responses": str(responses), "repeat": repeat})
        done = subprocess.run([python, handle.name, argument], capture_output=True, text=True, env=dict(os.environ))
    finally:
        os.unlink(handle.name)
    if done.returncode != 0:
        if "punkt_tab" in done.stderr:
            raise SystemExit("reference failed: it needs NLTK's punkt_tab (point NLTK_DATA at it)")
        raise SystemExit(f"reference failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_gradeloop(inputs: Path, responses: Path, repeat: int) -> tuple[float, list[dict]]:
    """gradeloop's verdicts and best time (memo caches cleared before each timed pass)."""
    from gradeloop.graders.constraints import _text
    from gradeloop.suites import ifeval

    prompts = ifeval.read_inputs(inputs)
    answers = ifeval.read_responses(responses)
    prompts = [p for p in prompts if p.prompt in answers]
    ifeval.score(prompts, answers)  # warm-up, as for the reference
    best, records = None, []
    for _ in range(repeat):
        _text.clear_memos()
        start = time.perf_counter()
        records = ifeval.score(prompts, answers).records
        seconds = time.perf_counter() - start
        best = seconds if best is None else min(best, seconds)
    return best, records


def agreement(ours: list[dict], theirs: list[dict]) -> dict[str, tuple[int, int]]:
    """``{"strict": (equal, total), "loose": (equal, total)}`` over instruction verdicts."""
    reference = {r["key"]: r for r in theirs}
    out = {}
    for mode in ("strict", "loose"):
        pairs = [(a, b) for r in ours for a, b in zip(r[mode], reference[r["key"]][mode])]
        out[mode] = (sum(a == b for a, b in pairs), len(pairs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=Path, default=DATA / "input_data.jsonl")
    parser.add_argument("--responses", type=Path, default=DATA / "input_response_data_gpt4_20231107_145030.jsonl")
    parser.add_argument("--reference-python", help="interpreter where if-verifiable or lm-eval is installed")
    parser.add_argument("--write-reference", type=Path, help="write the reference's verdicts (JSONL) here")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    ours_s, ours = run_gradeloop(args.inputs, args.responses, args.repeat)
    n = len(ours)
    rows = [("gradeloop", f"{n / ours_s:,.0f}", f"{ours_s:.3f}", "1.0x", "", "")]
    if args.reference_python:
        ref = run_reference(args.reference_python, args.inputs, args.responses, args.repeat)
        agree = agreement(ours, ref["records"])
        share = {m: f"{a / t:.2%} ({t - a} differ)" for m, (a, t) in agree.items()}
        rows[0] = rows[0][:4] + (share["strict"], share["loose"])
        label = f"reference ({ref['package']})"
        rows.append((label, f"{n / ref['seconds']:,.0f}", f"{ref['seconds']:.3f}",
                     f"{ref['seconds'] / ours_s:.1f}x slower", "", ""))
        if args.write_reference:
            with open(args.write_reference, "w", encoding="utf-8") as handle:
                for record in ref["records"]:
                    handle.write(json.dumps(record) + "\n")
        print(f"reference versions: {json.dumps(ref['versions'])}")
    else:
        rows.append(("reference", "not run (give --reference-python)", "", "", "", ""))
    from gradeloop.graders.constraints._text import sentence_backend

    print(f"{n} responses from {args.responses.name}, strict + loose; sentences: {sentence_backend()}; "
          f"best of {args.repeat}")
    header = ("implementation", "responses/s", "seconds", "vs gradeloop", "agree strict", "agree loose")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths)] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
