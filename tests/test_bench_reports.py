"""bench/ifeval_smollm2.py and bench/rft_smollm2.py with --report-only: every table
bench/RESULTS.md quotes from them, printed from a small store built here with the scripted
provider (no model, no training). Expected figures are worked out by hand from the data."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

from gradeloop import Store, run_eval
from gradeloop.suites import ifeval

BENCH = Path(__file__).resolve().parent.parent / "bench"


def report(script: str, home: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / script), "--report-only", str(home), *extra],
                          capture_output=True, text=True, timeout=120)


def write_rules(path: Path, rules: list[dict]) -> str:
    path.write_text(json.dumps(rules))
    return f"scripted/{path}"


# ---------------------------------------------------------------- IFEval

PROMPTS = [  # (prompt, instruction ids, kwargs)
    ("Write about cats in all lowercase letters.", ["change_case:english_lowercase"], [{}]),
    ("Write about dogs. Do not use any commas.", ["punctuation:no_comma"], [{}]),
    ("Write about birds. Do not use any commas. Wrap your entire response with double quotation marks.",
     ["punctuation:no_comma", "startend:quotation"], [{}, {}]),
    ("Write about fish, at length. Include the keyword fish.", ["keywords:existence"], [{"keywords": ["fish"]}]),
]
IFEVAL_RULES = [
    {"match": "at length", "response": "a fish swims", "finish_reason": "length"},
    {"match": "birds", "response": '"no commas here"'},
    {"response": "hello, world"},
]


def test_ifeval_report_only(tmp_path):
    data = tmp_path / "input_data.jsonl"
    data.write_text("".join(json.dumps({"key": i, "prompt": p, "instruction_id_list": ids, "kwargs": kw}) + "\n"
                            for i, (p, ids, kw) in enumerate(PROMPTS)))
    home = tmp_path / "home"
    path = ifeval.build(data, home / "ifeval")
    [run_id] = run_eval(path, [write_rules(tmp_path / "rules.json", IFEVAL_RULES)],
                        store=Store(home / "gradeloop.db"))
    done = report("ifeval_smollm2.py", home)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"(run {run_id}): 4 prompts," in out
    # cats: "hello, world" is lowercase (pass); dogs: a comma (fail); birds: no comma, quoted
    # (both pass); fish: names the keyword (pass). Prompts 3 of 4, instructions 4 of 5.
    for mode in ("strict", "loose"):
        assert re.search(rf"prompt_level_{mode}_acc\s+75\.00%", out)
        assert re.search(rf"inst_level_{mode}_acc\s+80\.00%", out)
        assert f"IFEval average (prompt / instruction), {mode}: 77.5" in out
    assert "responses at the token limit (finish_reason length): 1 of 4 (25%)" in out
    rows = dict((m[0], m[1:]) for m in re.findall(r"^(\w+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$", out, flags=re.M))
    assert rows == {"change_case": ("1", "100.0", "100.0"), "keywords": ("1", "100.0", "100.0"),
                    "punctuation": ("2", "50.0", "50.0"), "startend": ("1", "100.0", "100.0")}
    assert re.search(r"run pass rate, IFEval prompt-level strict\s+75\.00%", out)

    missing = report("ifeval_smollm2.py", tmp_path / "nowhere")
    assert missing.returncode == 2 and "nowhere/gradeloop.db does not exist" in missing.stderr


# ---------------------------------------------------------------- RFT / SFT / guarded RFT


def load_bench(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def held_out_run(bench, store: Store, tmp_path: Path, label: str, passing: int, rows: list[dict]) -> str:
    """A 'held-out <label>' run in which the first ``passing`` items name the keyword."""
    rules = [{"match": f"^q{i} ", "response": "a banana"} for i in range(passing)] + [{"response": "nothing"}]
    model = write_rules(tmp_path / f"{label}.json", rules)
    spec = bench.eval_spec(f"held-out {label}", rows, bench.FAMILIES["keyword"][1], max_tokens=16)
    [run_id] = bench.run_evals([spec], model, store)
    return run_id


def test_rft_report_only(tmp_path):
    bench = load_bench("rft_smollm2")
    rows = [{"messages": [{"role": "user", "content": f"q{i} Include the keyword \"banana\"."}],
             "constraints": [{"id": "keywords:existence", "keywords": ["banana"]}]} for i in range(10)]
    home = tmp_path / "home"
    home.mkdir()
    store = Store(home / "gradeloop.db")
    runs = {label: held_out_run(bench, store, tmp_path, label, passing, rows)
            for label, passing in (("base", 3), ("rft", 10), ("sft", 6), ("rft-guarded", 9))}
    # rejection sampling for SFT: 2 samples of each of the 10 prompts, 4 prompts pass
    sampler = write_rules(tmp_path / "sampler.json", [{"match": "^q[0-3] ", "response": "banana"},
                                                       {"response": "no"}])
    spec = bench.eval_spec("keyword rejection sampling", rows, bench.FAMILIES["keyword"][1], max_tokens=16,
                           temperature=0.9, seed=None)
    bench.run_evals([spec], sampler, store, epochs=2)
    # the SFT job's metrics events: the loss logged at steps 10 and 20 of 25
    sft = store.create_job(model="local/smollm2", method="supervised", training_file="sft.jsonl",
                           validation_file=None, hyperparameters={}, grader=None, options={}, seed=7, suffix=None,
                           metadata=None, output_dir_for=lambda job_id: tmp_path / job_id)
    for step, loss in ((10, 2.71), (20, 2.39), (25, None)):
        data = {"step": step, "total_steps": 25, **({"train_loss": loss} if loss else {})}
        store.add_job_event(sft["id"], f"step {step}", type="metrics", data=data)
    # 24 steps: train reward 0.1 then 0.5; validation 0.25 at step 12 and 0.75 at step 24
    curve = [{"step": s, "train": 0.1 if s <= 12 else 0.5, "valid": {12: 0.25, 24: 0.75}.get(s),
              "tokens": 10.0, "identical": 0.5, "seconds": 40.0} for s in range(1, 25)]
    stale = {"before": 0.0, "after": 0.0, "diff": 0.0, "ci": [0.0, 0.0], "b": 9, "c": 9, "p": 1.0, "n": 10}
    results = {
        "device": "cpu (test)", "family": "keyword", "args": {"seed": 7, "max_completion_tokens": 16},
        "probe": {"keyword": 0.2, "quotes": 0.0},
        "rft": {"job": "ftjob-none", "seconds": 3600, "curve": curve, "run": runs["rft"], **stale},
        "sft": {"job": sft["id"], "seconds": 3150, "sampling_seconds": 1338, "rows": 758, "run": runs["sft"],
                **stale},
        "rft_guarded": {"job": "ftjob-none", "seconds": 3660, "curve": curve[:18], "run": runs["rft-guarded"],
                        **stale},
        "on_topic": {"base": 0.717, "rft": 0.39},
    }
    (home / "results.json").write_text(json.dumps(results))
    done = report("rft_smollm2.py", home)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "keyword: held-out pass rate, 10 prompts, greedy, 16 tokens; device: cpu (test)" in out
    # recomputed from the runs, not the stale figures: base passes q0-q2; RFT passes all, so the
    # 7 discordant pairs all go fail->pass, exact McNemar p = 2 * 0.5^7 = 0.0156; SFT passes
    # q0-q5 (3 discordant, p = 2 * 0.5^3 = 0.25); guarded q0-q8 (6, p = 2 * 0.5^6 = 0.03125)
    row = r"^(.{28})\s*([\d.]+) m\s+([\d.]+)%\s+([\d.]+)%\s+([+-][\d.]+) \[.*\]\s+(\d+)/(\d+)\s+([\d.]+)$"
    table = {m[0].strip(): m[1:] for m in re.findall(row, out, flags=re.M)}
    assert table == {
        "RFT (24 steps)": ("60.0", "30.0", "100.0", "+70.0", "0", "7", "0.0156"),
        "SFT on passing samples": ("52.5", "30.0", "60.0", "+30.0", "0", "3", "0.2500"),
        "RFT, guarded (18 st.)": ("61.0", "30.0", "90.0", "+60.0", "0", "6", "0.0312"),
    }
    assert re.search(r"^  keyword\s+20%  in band$", out, flags=re.M)
    assert re.search(r"^  rft\s+0\.390$", out, flags=re.M)
    assert (f"SFT: 758 distinct passing samples, sampled in 22.3 min (20 samples; 4 of 10 prompts had one); "
            f"job {sft['id']}: 25 steps, final train loss 2.39\n") in out
    # windows of 18 // 12 = 1 and 24 // 12 = 2 steps, five a line; the first validation value is labelled
    assert ("guarded reward curve (train_reward_mean over windows of 1 steps; valid at validation steps):\n"
            "steps 1-1 0.100 | 2-2 0.100") in out
    assert ("RFT reward curve (train_reward_mean over windows of 2 steps; valid at validation steps):\n"
            "steps 1-2 0.100 | 3-4 0.100 | 5-6 0.100 | 7-8 0.100 | 9-10 0.100\n"
            "11-12 0.100 (valid 0.250) | 13-14 0.500 | 15-16 0.500 | 17-18 0.500 | 19-20 0.500\n"
            "21-22 0.500 | 23-24 0.500 (0.750)\n") in out

    missing = report("rft_smollm2.py", tmp_path / "nowhere")
    assert missing.returncode == 2 and "results.json does not exist" in missing.stderr


# ---------------------------------------------------------------- agents suite


def test_agents_report_only(tmp_path):
    """bench/agents_smollm2.py --report-only on a 2-epoch run of the agents suite against a scripted
    model: on the order desk it plays each item's reference calls and answers, on the calendar it
    only asks "Which time would suit you?" in text."""
    from gradeloop.runner import RunOptions
    from gradeloop.suites import agents
    from gradeloop.testing import FakeOpenAI, scripted_turns, tool_call

    home = tmp_path / "home"
    built = agents.build(4, 1, home / "agents", variants=["none"])
    items = agents.generate(4, 1, variants=["none"])
    # order_desk-000 (cancel, clear), calendar-000 (book, clear), order_desk-001 and calendar-001 (ambiguous)
    assert [(i["env"], i["ambiguous"]) for i in items] == [("order_desk", False), ("calendar", False),
                                                          ("order_desk", True), ("calendar", True)]
    desk = [i for i in items if i["env"] == "order_desk"]
    scripts = {i["messages"][1]["content"]: [{"content": None, "tool_calls": [tool_call(c["name"], c["arguments"])]}
                                             for c in i["reference_calls"]] + ["Done."] for i in desk}
    with FakeOpenAI(responder=scripted_turns(scripts, default="Which time would suit you?")) as server:
        [run_id] = run_eval(built["eval"], ["openai/agent"], store=Store(home / "gradeloop.db"),
                            options=RunOptions(epochs=2, base_url=server.url, use_cache=False))
    done = report("agents_smollm2.py", home)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"(run {run_id}): suite n=4 seed=1 variants=none ambiguous_share=0.25; epochs 2, temperature 0," in out
    # the order desk passes every criterion; calendar-000 fails the end state and asks needlessly;
    # calendar-001 asks rightly (in text) but changes nothing
    assert re.search(r"pass rate, end state\s+50\.0%", out)
    assert re.search(r"pass rate, asks when needed\s+75\.0%", out)
    assert re.search(r"pass rate, no forbidden call\s+100\.0%", out)
    assert re.search(r"^  1\s+50\.0%\s+50\.0%\n  2\s+50\.0%\s+50\.0%$", out, flags=re.M)
    assert re.search(r"^calendar\s+2\s+0\.0%\s+0\.0%\s+0\.0%$", out, flags=re.M)
    assert re.search(r"^order_desk\s+2\s+100\.0%\s+100\.0%\s+100\.0%$", out, flags=re.M)
    calls = 2 * sum(len(i["reference_calls"]) for i in desk)
    turns = (calls + 4 + 4) / 8  # a turn per call and one answer per order-desk episode; one turn on the calendar
    assert re.search(rf"^all\s+8\s+{turns:.2f}\s+{calls / 8:.2f}\s+0\s+0  answer 8$", out, flags=re.M)
    assert "ask or assume: 4 ambiguous / 4 clear episodes; asked on ambiguous 4, on clear 2; precision 66.7%, " \
           "recall 100.0%" in out
    assert f"episodes with at least one tool call: 4 of 8 (50.0%); tool calls in all: {calls}\n" in out
    assert f"call outcomes: ok {calls}\n" in out
    assert "first move: question in text 4, call another tool 2, call ask_user 2\n" in out
    assert f"after a tool result: another call {calls - 4}, a text answer 4\n" in out
    assert "passes on tasks the policy forbids (right outcome: change nothing): 0 of 0; on the others: 4 of 8" in out

    missing = report("agents_smollm2.py", tmp_path / "nowhere")
    assert missing.returncode == 2 and "nowhere/gradeloop.db does not exist" in missing.stderr
