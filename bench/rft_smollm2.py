"""The seed's thesis, measured: RFT lifts ``local/smollm2`` on an instruction family it is "on
the cusp" of, on held-out prompts, within about an hour of CPU; compared with SFT on
rejection-sampled passing outputs under a comparable budget.

What it does
    1. **Probe.** Six candidate instruction families (end with a phrase, wrap in double quotes,
       all lowercase, include a keyword, start with "Answer:", fewer than N words), 20 prompts
       each, greedy, through ``gradeloop.run_eval``; prints each family's pass rate. The
       chosen family (``--family``; ``auto`` picks the one in the 10-50 % band closest to 30 %)
       must be checkable by a deterministic grader: a ``constraints`` grader reading the item's
       own IFEval-style constraint (``{{ item.constraints }}``), or a ``python`` grader.
    2. **Data.** Base questions are topics x question templates written here (deterministic,
       ``--seed``). Topics are split: training and validation prompts use one set of topics,
       held-out prompts another, so "held-out" means unseen questions, not unseen wording only.
    3. **Before.** The held-out eval on ``local/smollm2``, greedy.
    4. **RFT.** A ``reinforcement`` job through gradeloop's job API (``create_job``: the worker
       process, events, checkpoints), the family's grader as the reward, LoRA. Steps are sized
       to ``--budget-minutes`` from a short timing of the sampler; the reward curve comes from
       the job's ``metrics`` events.
    5. **After.** The held-out eval on ``ft:<job>`` (greedy); paired against before: exact
       McNemar (two-sided binomial on the discordant pairs) and a paired bootstrap 95 % CI.
    6. **SFT baseline.** The base model samples every training prompt several times
       (temperature ``--sft-temperature``, the runner's ``epochs``); passing samples
       (``gradeloop.tune.data.sft_rows(passing_only=True)``) train a ``supervised`` job; the
       same held-out eval and paired test. Its budget counts the sampling time.
    7. **Guarded RFT** (``--guard``, with ``--skip-sft``). The reward becomes the family grader
       times the cosine similarity (shipped MiniLM) of the completion to the base model's greedy
       answer to the bare question (no instruction): examples/graders/keyword-on-topic.yaml's
       shape. Every held-out run in the store (base, RFT, SFT, guarded RFT) also gets its mean
       on-topic similarity to the base model's plain answers, so reward hacking (the answer bent
       around the instruction) shows as a number.

Device: CUDA when available (bf16 through gradeloop's device settings, ``use_vllm`` when vllm
imports; defaults scale up), else the CPU. ``--home DIR`` keeps the store and the jobs for
``gradeloop tune show`` / ``gradeloop eval list`` (``GRADELOOP_HOME=DIR``).

    GRADELOOP_THREADS=2 .venv/bin/python bench/rft_smollm2.py --home /tmp/rft-bench
    .venv/bin/python bench/rft_smollm2.py --probe-only                 # the family table only
    .venv/bin/python bench/rft_smollm2.py --budget-minutes 5 --train-prompts 40 --heldout-prompts 30  # smoke
    GRADELOOP_THREADS=2 .venv/bin/python bench/rft_smollm2.py --home /tmp/rft-bench --skip-probe --skip-sft --guard
    .venv/bin/python bench/rft_smollm2.py --report-only /tmp/rft-bench   # every table again, nothing run

The report at the end of a run covers every method run so far in the same ``--home`` (one
held-out table for RFT, SFT and guarded RFT, on-topic similarity, reward curves), from
``results.json`` there; ``--report-only HOME`` prints it again and recomputes each method's
paired statistics from the held-out runs in the store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# -- the question pool --------------------------------------------------------------------

TOPICS = [
    "photosynthesis", "the water cycle", "black holes", "volcanoes", "the French Revolution", "compound interest",
    "vaccines", "the internet", "honeybees", "the moon landing", "climate change", "electric cars", "sleep",
    "coffee", "the Roman Empire", "earthquakes", "rainbows", "DNA", "the stock market", "solar panels", "chess",
    "jazz music", "the Great Wall of China", "ocean tides", "baking bread", "meditation", "airplanes",
    "the human heart", "democracy", "inflation", "the printing press", "antibiotics", "glaciers", "octopuses",
    "the Olympic Games", "gravity", "marathon training", "composting", "the Renaissance", "green tea",
    "cloud computing", "deserts", "whales", "the immune system", "magnets", "3D printing", "origami",
    "the Amazon rainforest", "the periodic table", "hurricanes", "public libraries", "bicycles", "the Silk Road",
    "penguins", "nuclear energy", "video games", "the human brain", "bridges", "time zones", "photography",
    "chocolate", "lightning", "coral reefs", "the phases of the Moon", "password security", "remote work",
    "microplastics", "the Eiffel Tower", "Shakespeare", "the piano", "volunteering", "public transport",
    "dinosaurs", "the metric system", "wind turbines", "mushrooms", "the Mars rovers", "friendship",
]
QUESTIONS = [
    "Give a short overview of {t}.", "Explain {t} to a ten-year-old.", "Give three interesting facts about {t}.",
    "Why does {t} matter?", "Write a short paragraph about {t}.", "What are the pros and cons of {t}?",
    "Describe the history of {t} briefly.", "How would you explain {t} to a friend?",
    "Summarize what you know about {t}.", "What is a common misconception about {t}?",
    "What should a beginner know about {t}?", "Tell me something surprising about {t}.",
]
HELDOUT_TOPIC_SHARE = 0.35  # topics (and so questions) that only the held-out set uses

# -- instruction families -----------------------------------------------------------------

END_PHRASES = ["Is there anything else I can help with?", "That is all.", "Hope this helps!",
               "Let me know if you have other questions.", "Thank you for reading."]
KEYWORDS = ["banana", "umbrella", "galaxy", "lantern", "whistle", "velvet", "compass", "pebble"]
ANSWER_PREFIX_SOURCE = ("def grade(sample, item):\n"
                        "    return 1.0 if sample['output_text'].strip().startswith(item['prefix']) else 0.0\n")


def constraints_grader(name: str) -> dict[str, Any]:
    """A ``constraints`` grader that checks each item's own constraint list."""
    return {"type": "constraints", "name": name, "constraints": "{{ item.constraints }}"}


def _end_phrase(rng: random.Random) -> tuple[str, dict]:
    phrase = rng.choice(END_PHRASES)
    return (f'Finish your response with this exact phrase "{phrase}". No other words should follow this phrase.',
            {"constraints": [{"id": "startend:end_checker", "end_phrase": phrase}]})


def _quotes(rng: random.Random) -> tuple[str, dict]:
    return ("Wrap your entire response with double quotation marks.",
            {"constraints": [{"id": "startend:quotation"}]})


def _lowercase(rng: random.Random) -> tuple[str, dict]:
    return ("Your entire response should be in English, and in all lowercase letters. No capital letters are "
            "allowed.", {"constraints": [{"id": "change_case:english_lowercase"}]})


def _keyword(rng: random.Random) -> tuple[str, dict]:
    word = rng.choice(KEYWORDS)
    return (f'Include the keyword "{word}" in your response.',
            {"constraints": [{"id": "keywords:existence", "keywords": [word]}]})


def _answer_prefix(rng: random.Random) -> tuple[str, dict]:
    return ('Start your answer with "Answer:".', {"prefix": "Answer:"})


def _few_words(rng: random.Random) -> tuple[str, dict]:
    n = rng.choice([20, 25, 30])
    return (f"Answer with less than {n} words.",
            {"constraints": [{"id": "length_constraints:number_words", "relation": "less than", "num_words": n}]})


FAMILIES: dict[str, tuple[Any, dict[str, Any]]] = {  # name -> (instruction maker, grader)
    "end_phrase": (_end_phrase, constraints_grader("ends with the phrase")),
    "quotes": (_quotes, constraints_grader("wrapped in double quotes")),
    "lowercase": (_lowercase, constraints_grader("all lowercase")),
    "keyword": (_keyword, constraints_grader("includes the keyword")),
    "answer_prefix": (_answer_prefix, {"type": "python", "name": "starts with Answer:",
                                       "source": ANSWER_PREFIX_SOURCE}),
    "few_words": (_few_words, constraints_grader("fewer than N words")),
}


def question_split(seed: int) -> tuple[list[str], list[str]]:
    """(training-side questions, held-out questions), each shuffled; disjoint topics."""
    rng = random.Random(seed)
    topics = TOPICS[:]
    rng.shuffle(topics)
    cut = round(len(topics) * HELDOUT_TOPIC_SHARE)
    held, train = topics[:cut], topics[cut:]
    side = [q.format(t=t) for t in train for q in QUESTIONS]
    held_q = [q.format(t=t) for t in held for q in QUESTIONS]
    rng.shuffle(side)
    rng.shuffle(held_q)
    return side, held_q


def make_rows(family: str, questions: list[str], seed: int) -> list[dict[str, Any]]:
    """RFT rows ``{"messages", **grader fields}``: the question, then the family's instruction."""
    maker, _ = FAMILIES[family]
    rng = random.Random(f"{family}:{seed}")
    rows = []
    for q in questions:
        instruction, fields = maker(rng)
        rows.append({"messages": [{"role": "user", "content": f"{q} {instruction}"}], **fields})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def eval_spec(name: str, rows: list[dict[str, Any]], grader: dict[str, Any], *, max_tokens: int,
              temperature: float = 0.0, seed: int | None = 1) -> Any:
    """An eval of ``rows`` (prompts are each row's ``messages``) graded by ``grader``."""
    from gradeloop import eval_from_dict

    params: dict[str, Any] = {"temperature": temperature, "max_completion_tokens": max_tokens}
    if seed is not None:
        params["seed"] = seed
    return eval_from_dict({
        "name": name,
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [grader],
        "data_source": {"type": "completions",
                        "source": {"type": "file_content", "content": [{"item": r} for r in rows]},
                        "input_messages": {"type": "item_reference", "item_reference": "item.messages"},
                        "sampling_params": params},
    })


async def _run_many(specs: list[Any], model: str, store: Any, options: Any) -> list[str]:
    from gradeloop import run_eval_async

    runs = await asyncio.gather(*(run_eval_async(s, [model], store=store, options=options) for s in specs))
    return [r[0] for r in runs]


def run_evals(specs: list[Any], model: str, store: Any, *, epochs: int | None = None, name: str | None = None,
              use_cache: bool = False) -> list[str]:
    """Run several evals on one model side by side (one shared engine); returns the run ids."""
    from gradeloop import RunOptions

    options = RunOptions(epochs=epochs, use_cache=use_cache, name=name)
    return asyncio.run(_run_many(specs, model, store, options))


def outcomes(store: Any, run_id: str) -> dict[int, int]:
    """item index -> 1 (pass) / 0 (fail or error), epoch 0."""
    return {o["index"]: int(o["status"] == "pass") for o in store.output_items(run_id) if o["epoch"] == 0}


# -- paired statistics ----------------------------------------------------------------------


# -- device -----------------------------------------------------------------------------


def device_line() -> tuple[str, bool]:
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        mem = torch.cuda.get_device_properties(0).total_memory / 2 ** 30
        return f"cuda ({name}, {mem:.0f} GiB, bf16={'yes' if torch.cuda.is_bf16_supported() else 'no'})", True
    threads = os.environ.get("GRADELOOP_THREADS") or str(torch.get_num_threads())
    return f"cpu ({os.cpu_count()} cores, {threads} torch threads)", False


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


# -- the stages -------------------------------------------------------------------------------


def probe(store: Any, seed: int, n: int, max_tokens: int) -> dict[str, float]:
    """Pass rate of the base model per family on ``n`` training-side prompts (greedy)."""
    side, _ = question_split(seed)
    questions = side[-n:]  # the tail of the training side: never a training or validation prompt
    specs = [eval_spec(f"probe {f}", make_rows(f, questions, seed), FAMILIES[f][1], max_tokens=max_tokens)
             for f in FAMILIES]
    runs = run_evals(specs, "local/smollm2", store, name=None)
    rates = {}
    for family, run_id in zip(FAMILIES, runs):
        res = outcomes(store, run_id)
        rates[family] = sum(res.values()) / len(res)
    return rates


def wait_for_job(store: Any, job_id: str, *, deadline: float | None, every: float = 15.0) -> dict[str, Any]:
    """Poll the job until it ends; past ``deadline`` (a wall-clock guard) pause it, so its last
    checkpoint can still be evaluated. Prints a line per new metrics event batch."""
    from gradeloop.tune._jobs import pause_job, refresh_job

    seen, paused = 0, False
    while True:
        job = refresh_job(store, job_id)
        events = [e for e in store.job_events(job_id) if e["type"] == "metrics"]
        if len(events) > seen:
            d = events[-1]["data"]
            print(f"  [{time.strftime('%H:%M:%S')}] {events[-1]['message']} "
                  f"({d.get('timing', {}).get('step', {}).get('full_iteration', 0):.1f}s/step)"
                  if "scores" in d else f"  [{time.strftime('%H:%M:%S')}] {events[-1]['message']}", flush=True)
            seen = len(events)
        if job["status"] in ("succeeded", "failed", "cancelled", "paused"):
            return job
        if deadline is not None and time.time() > deadline and not paused and job["status"] == "running":
            print("  budget guard: pausing the job (its pause checkpoint is evaluated)", flush=True)
            pause_job(store, job_id)
            paused = True
        time.sleep(every)


def model_of(store: Any, job: dict[str, Any]) -> str:
    """``ft:<job>`` when it succeeded; the newest checkpoint when it was paused by the guard."""
    if job["status"] == "succeeded":
        return job["fine_tuned_model"]
    if job["status"] == "paused":
        ckpts = [c for c in store.job_checkpoints(job["id"]) if not c["removed"]]
        return max(ckpts, key=lambda c: c["step"])["name"]
    raise SystemExit(f"job {job['id']} {job['status']}: {job['error']} (see {job['output_dir']}/worker.log)")


def reward_curve(store: Any, job_id: str) -> list[dict[str, Any]]:
    """Per step: train_reward_mean, valid_reward_mean (validation steps), timing, length."""
    rows = []
    for e in store.job_events(job_id):
        d = e["data"] or {}
        if e["type"] != "metrics" or "scores" not in d:
            continue
        rows.append({"step": d["step"], "train": d["scores"].get("train_reward_mean"),
                     "valid": d["scores"].get("valid_reward_mean"),
                     "tokens": d.get("completion_tokens_mean"),
                     "identical": (d.get("gradeloop") or {}).get("groups_identical"),
                     "seconds": (d.get("timing") or {}).get("step", {}).get("full_iteration")})
    return rows


def print_curve(curve: list[dict[str, Any]], every: int) -> None:
    """Means of train_reward_mean over windows of ``every`` steps, the validation reward where
    one falls in the window, completion length and seconds per step."""
    print(f"{'steps':<10}{'train reward':>13}{'valid reward':>13}{'identical groups':>17}{'tokens':>8}{'s/step':>8}")
    for i in range(0, len(curve), every):
        w = curve[i:i + every]
        valid = [r["valid"] for r in w if r["valid"] is not None]
        mean = lambda key: sum(r[key] or 0 for r in w) / len(w)  # noqa: E731
        print(f"{w[0]['step']:>3}-{w[-1]['step']:<6}{mean('train'):>13.3f}"
              f"{(f'{valid[-1]:.3f}' if valid else ''):>13}{mean('identical'):>17.2f}{mean('tokens'):>8.1f}"
              f"{mean('seconds'):>8.1f}")
    print("per step: " + " ".join(f"{r['train']:.2f}" for r in curve))


def plain_answers(store: Any, questions: list[str], max_tokens: int, label: str) -> list[str]:
    """The base model's greedy answers to the bare questions (no instruction): what an on-topic
    answer looks like."""
    rows = [{"messages": [{"role": "user", "content": q}]} for q in questions]
    grader = {"type": "string_check", "name": "answered", "input": "{{ sample.output_text }}", "operation": "ne",
              "reference": ""}
    [run_id] = run_evals([eval_spec(f"plain answers {label}", rows, grader, max_tokens=max_tokens)], "local/smollm2",
                         store)
    return answers_of(store, run_id, len(rows))


def answers_of(store: Any, run_id: str, n: int) -> list[str]:
    """The output text of each item of a run (epoch 0), in item order."""
    texts = {o["index"]: ((o["sample"] or {}).get("output") or {}).get("content") or ""
             for o in store.output_items(run_id) if o["epoch"] == 0}
    return [texts.get(i, "") for i in range(n)]


def on_topic(answers: list[str], references: list[str]) -> list[float]:
    """Cosine similarity of each answer to its reference (the shipped MiniLM, as in the reward)."""
    from gradeloop.graders import grade_many
    from gradeloop.spec import Document, load_grader

    grader = load_grader(ON_TOPIC, Document(data=ON_TOPIC, file="<bench>"), ())
    pairs = [({"output_text": a}, {"reference": r}) for a, r in zip(answers, references)]
    return [r.score for r in asyncio.run(grade_many(grader, pairs))]


ON_TOPIC = {"type": "text_similarity", "name": "close to a plain answer", "evaluation_metric": "cosine",
            "input": "{{ sample.output_text }}", "reference": "{{ item.reference }}", "pass_threshold": 0.5}


def guarded(grader: dict[str, Any]) -> dict[str, Any]:
    """The family grader times on-topic similarity (examples/graders/keyword-on-topic.yaml)."""
    return {"type": "multi", "name": f"{grader['name']}, on topic",
            "graders": {"instruction": grader, "on_topic": ON_TOPIC}, "calculate_output": "instruction * on_topic"}


def heldout_eval(store: Any, rows: list[dict[str, Any]], grader: dict[str, Any], model: str, max_tokens: int,
                 label: str) -> tuple[list[int], float, str]:
    """Greedy held-out eval of ``model``: (per-item 0/1 in row order, seconds, run id)."""
    t = time.perf_counter()
    [run_id] = run_evals([eval_spec(f"held-out {label}", rows, grader, max_tokens=max_tokens)], model, store)
    res = outcomes(store, run_id)
    return [res.get(i, 0) for i in range(len(rows))], time.perf_counter() - t, run_id


def paired(before: list[int], after: list[int], seed: int) -> dict[str, Any]:
    from gradeloop.stats import mcnemar_exact, paired_bootstrap

    b, c, p = mcnemar_exact(before, after)
    low, high = paired_bootstrap(before, after, seed=seed)
    n = len(before)
    return {"before": sum(before) / n, "after": sum(after) / n, "diff": (sum(after) - sum(before)) / n,
            "ci": [low, high], "b": b, "c": c, "p": p, "n": n}


def rft_job(store: Any, args: Any, paths: dict[str, Path], grader: dict[str, Any], on_gpu: bool) -> dict[str, Any]:
    from gradeloop.tune._jobs import create_job

    hyper = {"n_epochs": max(1, math.ceil(args.max_steps * args.batch_size / args.train_prompts)),
             "batch_size": args.batch_size, "learning_rate_multiplier": args.lr_multiplier,
             "eval_interval": max(1, math.ceil(args.max_steps / args.validations)), "eval_samples": 1}
    options: dict[str, Any] = {"num_generations": args.num_generations, "max_steps": args.max_steps,
                               "max_completion_tokens": args.max_completion_tokens,
                               "temperature": args.temperature, "per_device_batch_size": args.per_device_batch_size}
    if on_gpu and vllm_available():
        options["use_vllm"] = True
    print(f"RFT job: hyperparameters {hyper}, options {options}", flush=True)
    job = create_job(store, method="reinforcement", model="local/smollm2", training_file=paths["train"],
                     validation_file=paths["valid"], grader=grader, hyperparameters=hyper, options=options,
                     seed=args.seed, suffix="rft-bench")
    return job


def sft_job(store: Any, args: Any, rows_path: Path, n_rows: int, minutes_left: float, on_gpu: bool) -> dict[str, Any]:
    from gradeloop.tune._jobs import create_job

    hyper = {"n_epochs": args.sft_epochs, "batch_size": args.sft_batch_size}
    options: dict[str, Any] = {}
    print(f"SFT job on {n_rows} passing samples: hyperparameters {hyper} "
          f"({minutes_left:.0f} min of the budget left after sampling)", flush=True)
    return create_job(store, method="supervised", model="local/smollm2", training_file=rows_path,
                      hyperparameters=hyper, options=options, seed=args.seed, suffix="sft-bench")


# -- the report (printed at the end of a run, or from an existing --home) ---------------------

METHODS = ("rft", "sft", "rft_guarded")


def method_label(key: str, entry: dict[str, Any]) -> str:
    steps = len(entry.get("curve") or [])
    return {"rft": f"RFT ({steps} steps)", "sft": "SFT on passing samples",
            "rft_guarded": f"RFT, guarded ({steps} st.)"}[key]


def print_table(results: dict[str, Any]) -> None:
    """The held-out table: one row per method in ``results`` (RFT, SFT, guarded RFT), each paired
    against the base model on the same prompts."""
    keys = [k for k in METHODS if k in results]
    if not keys:
        return
    n, tokens = results[keys[0]]["n"], results["args"]["max_completion_tokens"]
    print(f"\n{results['family']}: held-out pass rate, {n} prompts, greedy, {tokens} tokens; "
          f"device: {results['device']}")
    print(f"{'method':<28}{'train wall':>11}{'before':>8}{'after':>8}{'diff [95% CI]':>24}{'b/c':>8}"
          f"{'McNemar p':>11}")
    for key in keys:
        r = results[key]
        ci = f"{100 * r['diff']:+.1f} [{100 * r['ci'][0]:+.1f}, {100 * r['ci'][1]:+.1f}]"
        print(f"{method_label(key, r):<28}{r['seconds'] / 60:>9.1f} m{100 * r['before']:>7.1f}%"
              f"{100 * r['after']:>7.1f}%{ci:>24}{r['b']:>4}/{r['c']:<3}{r['p']:>11.4f}")
    print("(b/c: items that went pass->fail / fail->pass; CI: paired bootstrap, 10,000 resamples)")


def print_compact_curve(curve: list[dict[str, Any]], every: int, title: str) -> None:
    """The train reward over windows of ``every`` steps, five windows a line, with the
    validation reward where one falls in a window."""
    print(f"{title} (train_reward_mean over windows of {every} steps; valid at validation steps):")
    parts, labelled = [], False
    for i in range(0, len(curve), every):
        w = curve[i:i + every]
        part = f"{w[0]['step']}-{w[-1]['step']} {sum(r['train'] or 0 for r in w) / len(w):.3f}"
        valid = [r["valid"] for r in w if r["valid"] is not None]
        if valid:
            part += f" ({'' if labelled else 'valid '}{valid[-1]:.3f})"
            labelled = True
        parts.append(part)
    for i in range(0, len(parts), 5):
        print(("steps " if i == 0 else "") + " | ".join(parts[i:i + 5]))


def sft_line(results: dict[str, Any], store: Any) -> str:
    """Rejection sampling and the SFT job: samples, passing rows, steps, final training loss."""
    r = results["sft"]
    line = f"SFT: {r['rows']} distinct passing samples, sampled in {r['sampling_seconds'] / 60:.1f} min"
    sampling = newest_run(store, f"{results['family']} rejection sampling")
    if sampling:
        items = store.output_items(sampling)
        hit = {o["index"] for o in items if o["status"] == "pass"}
        line += f" ({len(items)} samples; {len(hit)} of {len(store.run_items(sampling))} prompts had one)"
    metrics = [e["data"] or {} for e in store.job_events(r["job"]) if e["type"] == "metrics"]
    losses = [d["train_loss"] for d in metrics if d.get("train_loss") is not None]
    if losses:
        line += f"; job {r['job']}: {metrics[-1].get('step')} steps, final train loss {losses[-1]:.2f}"
    return line


def print_report(results: dict[str, Any], store: Any) -> None:
    """Every table of the benchmark from its results: the family probe, the held-out table of all
    methods run in this --home, on-topic similarity, the SFT data and the reward curves."""
    if results.get("probe"):
        print("\nprobe: base pass rate per family (greedy)")
        for f, r in results["probe"].items():
            print(f"  {f:<14}{100 * r:5.0f}%  {'in band' if 0.10 <= r <= 0.50 else ''}")
    print_table(results)
    if results.get("on_topic"):
        print("\non-topic: mean cosine similarity of held-out answers to the base model's plain answers "
              "(the same questions without the instruction)")
        for name, value in results["on_topic"].items():
            print(f"  {name:<12}{value:.3f}")
    if "sft" in results:
        print("\n" + sft_line(results, store))
    for key, title in (("rft", "RFT reward curve"), ("rft_guarded", "guarded reward curve")):
        curve = (results.get(key) or {}).get("curve")
        if curve:
            every = max(1, len(curve) // 12)
            print(f"\n{title} (train_reward_mean over windows; valid_reward_mean at validation steps):")
            print_curve(curve, every)
            print_compact_curve(curve, every, title)


def newest_run(store: Any, name: str) -> str | None:
    runs = [r for r in store.list_runs(limit=10_000) if r["name"] == name]
    return runs[0]["id"] if runs else None


def recompute(results: dict[str, Any], store: Any) -> dict[str, Any]:
    """``results`` with each method's paired statistics recomputed from its held-out run in the
    store, against the base run (``before_run``, else the newest "held-out base")."""
    base = results.get("before_run") or newest_run(store, "held-out base")
    if base is None:
        fail("--report-only: the store holds no 'held-out base' run")
    n = len(store.run_items(base))
    before = [outcomes(store, base).get(i, 0) for i in range(n)]
    out = dict(results)
    for key in METHODS:
        if key in results:
            after = [outcomes(store, results[key]["run"]).get(i, 0) for i in range(n)]
            out[key] = {**results[key], **paired(before, after, results["args"]["seed"])}
    return out


def report_only(home: Path) -> None:
    """Print the report of an earlier run from ``home`` (its results.json and store); runs nothing."""
    from gradeloop import Store

    path, db = home / "results.json", home / "gradeloop.db"
    for needed in (path, db):
        if not needed.is_file():
            fail(f"--report-only: {needed} does not exist (give a --home that this benchmark wrote)")
    results, store = json.loads(path.read_text()), Store(db)
    print(f"report of {home}: paired statistics recomputed from the store's held-out runs, the rest as "
          "results.json records it")
    print_report(recompute(results, store), store)


def fail(message: str) -> None:
    """Bad input: one line on stderr, exit code 2."""
    print(message, file=sys.stderr)
    raise SystemExit(2)


def defaults(on_gpu: bool) -> dict[str, Any]:
    """Per-device defaults: the CPU ones fit about an hour on 2 cores; a GPU affords more prompts,
    longer completions and bigger groups in less time."""
    if on_gpu:
        return dict(budget_minutes=30, train_prompts=500, heldout_prompts=300, valid_prompts=64, num_generations=16,
                    batch_size=8, max_completion_tokens=128, per_device_batch_size=32, sft_samples=16,
                    est_step_seconds=6.0)
    return dict(budget_minutes=60, train_prompts=200, heldout_prompts=100, valid_prompts=24, num_generations=8,
                batch_size=4, max_completion_tokens=64, per_device_batch_size=16, sft_samples=12,
                est_step_seconds=45.0)


def main() -> None:
    from gradeloop import Store

    early = argparse.ArgumentParser(add_help=False)  # before device_line: a report needs no torch
    early.add_argument("--report-only", type=Path, default=None)
    if (known := early.parse_known_args()[0]).report_only is not None:
        report_only(known.report_only)
        return
    dev, on_gpu = device_line()
    d = defaults(on_gpu)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", default="keyword", help=f"one of {', '.join(FAMILIES)}, or auto")
    parser.add_argument("--probe-only", action="store_true", help="print the family probe and stop")
    parser.add_argument("--skip-probe", action="store_true")
    parser.add_argument("--probe-prompts", type=int, default=20)
    parser.add_argument("--budget-minutes", type=float, default=d["budget_minutes"],
                        help="wall-clock budget of each method's training (SFT: sampling included)")
    parser.add_argument("--train-prompts", type=int, default=d["train_prompts"])
    parser.add_argument("--heldout-prompts", type=int, default=d["heldout_prompts"])
    parser.add_argument("--valid-prompts", type=int, default=d["valid_prompts"],
                        help="RFT's validation file (training-side topics, not training prompts)")
    parser.add_argument("--num-generations", type=int, default=d["num_generations"])
    parser.add_argument("--batch-size", type=int, default=d["batch_size"], help="RFT prompts per step")
    parser.add_argument("--max-completion-tokens", type=int, default=d["max_completion_tokens"],
                        help="sampling length in training and in every eval")
    parser.add_argument("--per-device-batch-size", type=int, default=d["per_device_batch_size"])
    parser.add_argument("--lr-multiplier", type=float, default=10.0, help="x 1e-5 (RFT, LoRA)")
    parser.add_argument("--temperature", type=float, default=0.7, help="RFT sampling temperature")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="RFT steps (default: the budget over an estimated step time)")
    parser.add_argument("--est-step-seconds", type=float, default=d["est_step_seconds"])
    parser.add_argument("--validations", type=int, default=6, help="RFT validation passes")
    parser.add_argument("--skip-rft", action="store_true", help="only the SFT baseline (same data, same held-out set)")
    parser.add_argument("--skip-sft", action="store_true")
    parser.add_argument("--guard", action="store_true",
                        help="RFT reward x on-topic similarity to the base model's plain answer (see step 7)")
    parser.add_argument("--sft-samples", type=int, default=d["sft_samples"], help="base-model samples per prompt")
    parser.add_argument("--sft-temperature", type=float, default=0.9)
    parser.add_argument("--sft-epochs", type=int, default=3)
    parser.add_argument("--sft-batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, default=None, help="keep the store and jobs here")
    parser.add_argument("--report-only", type=Path, default=None, metavar="HOME",
                        help="run nothing: print every table from an earlier --home (results.json and the store)")
    args = parser.parse_args()
    if args.max_steps is None:
        args.max_steps = max(1, int(args.budget_minutes * 60 / args.est_step_seconds))

    wall = time.perf_counter()
    print(f"device: {dev}" + (f"; vLLM generation: {'yes' if vllm_available() else 'no (not installed)'}"
                              if on_gpu else ""))
    with tempfile.TemporaryDirectory() as tmp:
        home = (args.home or Path(tmp)).resolve()
        home.mkdir(parents=True, exist_ok=True)
        os.environ["GRADELOOP_HOME"] = str(home)  # jobs' workers and ft:<job> look here
        store = Store(home / "gradeloop.db")
        print(f"store: {home} (GRADELOOP_HOME={home} gradeloop tune list / eval list)")

        family = args.family
        rates: dict[str, float] = {}
        if not args.skip_probe or family == "auto":
            t = time.perf_counter()
            rates = probe(store, args.seed, args.probe_prompts, args.max_completion_tokens)
            print(f"\nprobe: base pass rate per family ({args.probe_prompts} prompts each, greedy, "
                  f"{args.max_completion_tokens} tokens; {time.perf_counter() - t:.0f}s)")
            for f, r in rates.items():
                band = "in band" if 0.10 <= r <= 0.50 else ""
                print(f"  {f:<14}{100 * r:5.0f}%  {band}")
            if args.probe_only:
                return
            if family == "auto":
                in_band = [f for f, r in rates.items() if 0.10 <= r <= 0.50] or list(rates)
                family = min(in_band, key=lambda f: abs(rates[f] - 0.30))
        grader = FAMILIES[family][1]
        side, held = question_split(args.seed)
        usable = len(side) - args.probe_prompts
        n_train = min(args.train_prompts, usable - args.valid_prompts)
        train_rows = make_rows(family, side[:n_train], args.seed)
        valid_rows = make_rows(family, side[n_train:n_train + args.valid_prompts], args.seed + 1)
        held_rows = make_rows(family, held[:args.heldout_prompts], args.seed + 2)
        held_refs: list[str] = []
        if args.guard:
            t = time.perf_counter()
            refs = plain_answers(store, side[:n_train + args.valid_prompts] + held[:args.heldout_prompts],
                                 args.max_completion_tokens, family)
            for row, ref in zip(train_rows + valid_rows, refs):
                row["reference"] = ref
            held_refs = refs[n_train + args.valid_prompts:]
            print(f"guard: the base model's plain answers to {len(refs)} bare questions "
                  f"({time.perf_counter() - t:.0f}s) are the on-topic references", flush=True)
        data = home / "data"
        data.mkdir(exist_ok=True)
        paths = {"train": write_jsonl(data / f"{family}.train.jsonl", train_rows),
                 "valid": write_jsonl(data / f"{family}.valid.jsonl", valid_rows),
                 "heldout": write_jsonl(data / f"{family}.heldout.jsonl", held_rows)}
        (data / f"{family}.grader.json").write_text(json.dumps(grader, indent=2))
        print(f"\nfamily: {family} (grader {grader['type']}: {grader['name']}); {len(train_rows)} training, "
              f"{len(valid_rows)} validation, {len(held_rows)} held-out prompts (held-out topics are disjoint)")
        print(f"  e.g. {train_rows[0]['messages'][0]['content']}")

        before, secs, before_run = heldout_eval(store, held_rows, grader, "local/smollm2", args.max_completion_tokens,
                                                "base")
        print(f"before: local/smollm2 passes {sum(before)}/{len(before)} held-out prompts ({secs:.0f}s, run "
              f"{before_run})", flush=True)

        results: dict[str, Any] = {"device": dev, "family": family, "before_run": before_run, "args": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
        if rates:  # a --skip-probe rerun in the same --home keeps the earlier probe
            results["probe"] = rates
        # -- RFT
        curve: list[dict[str, Any]] = []
        if not args.skip_rft:
            t = time.perf_counter()
            job = rft_job(store, args, paths, guarded(grader) if args.guard else grader, on_gpu)
            job = wait_for_job(store, job["id"], deadline=time.time() + 1.1 * args.budget_minutes * 60)
            rft_secs = time.perf_counter() - t
            model = model_of(store, job)
            curve = reward_curve(store, job["id"])
            print(f"RFT job {job['id']}: {job['status']} in {rft_secs / 60:.1f} min, {len(curve)} steps; model {model}")
            label = "rft-guarded" if args.guard else "rft"
            after, secs, after_run = heldout_eval(store, held_rows, grader, model, args.max_completion_tokens, label)
            print(f"after: {model} passes {sum(after)}/{len(after)} ({secs:.0f}s, run {after_run})", flush=True)
            results["rft_guarded" if args.guard else "rft"] = {
                "job": job["id"], "model": model, "seconds": rft_secs, "curve": curve, "run": after_run,
                **paired(before, after, args.seed)}

        # -- SFT on rejection-sampled passing outputs
        if not args.skip_sft:
            from gradeloop.tune.data import sft_rows

            t = time.perf_counter()
            spec = eval_spec(f"{family} rejection sampling", train_rows, grader, max_tokens=args.max_completion_tokens,
                             temperature=args.sft_temperature, seed=None)  # a fixed seed repeats across epochs
            [sample_run] = run_evals([spec], "local/smollm2", store, epochs=args.sft_samples)
            sample_secs = time.perf_counter() - t
            rows = sft_rows(store, [sample_run], passing_only=True)
            sampled = args.sft_samples * len(train_rows)
            prompts_hit = len({json.dumps(r["messages"][:-1]) for r in rows})
            print(f"rejection sampling: {sampled} samples in {sample_secs / 60:.1f} min; {len(rows)} distinct passing "
                  f"samples from {prompts_hit}/{len(train_rows)} prompts", flush=True)
            sft_path = write_jsonl(data / f"{family}.sft.jsonl", rows)
            sjob = sft_job(store, args, sft_path, len(rows), args.budget_minutes - sample_secs / 60, on_gpu)
            sjob = wait_for_job(store, sjob["id"], deadline=t + 1.1 * args.budget_minutes * 60 - time.perf_counter()
                                + time.time(), every=10.0)
            sft_secs = time.perf_counter() - t
            smodel = model_of(store, sjob)
            s_after, secs, s_run = heldout_eval(store, held_rows, grader, smodel, args.max_completion_tokens, "sft")
            print(f"after: {smodel} passes {sum(s_after)}/{len(s_after)} ({secs:.0f}s, run {s_run})", flush=True)
            results["sft"] = {"job": sjob["id"], "model": smodel, "seconds": sft_secs, "sampling_seconds": sample_secs,
                              "rows": len(rows), **paired(before, s_after, args.seed)}

        if held_refs:
            for name in ("base", "rft", "sft", "rft-guarded"):
                runs = [r for r in store.list_runs(limit=500) if r["name"] == f"held-out {name}"]
                if runs:
                    sims = on_topic(answers_of(store, runs[0]["id"], len(held_refs)), held_refs)
                    results.setdefault("on_topic", {})[name] = sum(sims) / len(sims)
        out = home / "results.json"  # an SFT-only (or RFT-only) rerun in the same --home adds to it
        merged = {**json.loads(out.read_text()), **results} if out.exists() else results
        print_report(merged, store)
        total = time.perf_counter() - wall
        merged["total_seconds"] = total
        out.write_text(json.dumps(merged, indent=2))
        print(f"\ntotal wall time: {total / 60:.1f} min; results in {home / 'results.json'}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
