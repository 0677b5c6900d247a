"""Choosing with eval results: cost, compare of several runs (Holm, non-inferiority, JUnit),
recommend, cusp (pass@k / pass^k, RFT targets) and eval health, on real runs in a temp store."""

import json
import threading
import xml.etree.ElementTree as ET

import pytest

from conftest import run_cli
from gradeloop import RunOptions, Store, eval_from_dict, run_eval
from gradeloop.decide import compare_many, cusp, health, junit_xml, load_prices, recommend, run_cost, write_rft
from gradeloop.errors import InputError
from gradeloop.testing import FakeOpenAI

N = 60


def triage_eval(name: str = "triage", *, n: int = N, temperature: float | None = None, criteria=None) -> dict:
    """Items q0…q{n-1} with a group; the model passes by answering "yes"."""
    source = {"type": "completions",
              "source": {"type": "file_content", "content": [
                  {"item": {"q": f"q{i}", "group": "easy" if i % 2 else "hard"}} for i in range(n)]},
              "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{ item.q }}"}]}}
    if temperature is not None:
        source["sampling_params"] = {"temperature": temperature}
    return {
        "name": name,
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": criteria or [{"type": "string_check", "name": "says yes",
                                          "input": "{{ sample.output_text }}", "operation": "eq", "reference": "yes"}],
        "data_source": source,
    }


def passes(model: str, q: str) -> bool:
    i = int(q[1:])
    if model == "big":
        return i < 50
    if model == "mini":  # the same items as big, but one
        return i < 49
    return i < 30  # nano


def run_models(models: list[str], definition: dict | None = None, responder=None) -> list[str]:
    def answer(body):
        return "yes" if passes(body["model"], body["messages"][-1]["content"]) else "no"

    with FakeOpenAI(responder=responder or answer) as server:
        return run_eval(eval_from_dict(definition or triage_eval()), [f"openai/{m}" for m in models],
                        options=RunOptions(base_url=server.url))


@pytest.fixture
def three_runs():
    return run_models(["big", "mini", "nano"])


def write_prices(tmp_path, text="big: {input: 2.0, cached_input: 0.5, output: 8.0}\n"
                                "mini: {input: 0.4, output: 1.6}\nnano: {input: 0.1, output: 0.4}\n"):
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    return path


# -- prices and cost --------------------------------------------------------------------------

def test_prices_match_names_and_a_file_overrides_the_defaults(tmp_path, monkeypatch):
    table = load_prices()
    assert table.lookup("openai/gpt-4.1-2025-04-14")[0] == "gpt-4.1"
    assert table.lookup("openai/gpt-4.1-mini")[1].output == 1.6
    assert table.lookup("local/smollm2")[0] == "local" and table.lookup("ft:ftjob_1")[0] == "ft"
    assert table.lookup("scripted/rules.yaml") is None
    env_file = write_prices(tmp_path, "gpt-4.1: {input: 1, output: 1}\nlocal: {per_hour: 0.5}\n")
    monkeypatch.setenv("GRADELOOP_PRICES", str(env_file))
    assert load_prices().lookup("openai/gpt-4.1")[1].input == 1
    flag = tmp_path / "flag.yaml"
    flag.write_text("gpt-4.1: {input: 3, output: 9}\n")
    assert load_prices(flag).lookup("gpt-4.1")[1].input == 3  # --prices beats GRADELOOP_PRICES
    bad = tmp_path / "bad.yaml"
    bad.write_text("gpt-4.1:\n  input: 2\n  ouput: 8\n")
    with pytest.raises(InputError) as exc:
        load_prices(bad)
    assert exc.value.line == 3 and exc.value.field == "gpt-4.1.ouput"


def test_run_cost_uses_the_runs_own_tokens_and_keeps_judges_apart(tmp_path):
    definition = triage_eval(n=6, criteria=[{"type": "score_model", "name": "judge", "model": "judge-model",
                                             "pass_threshold": 1,
                                             "input": [{"role": "user", "content": "judge {{ sample.output_text }}"}]}])

    def answer(body):
        return '{"result": 1, "steps": []}' if body["model"] == "judge-model" else "yes it is"

    [run_id] = run_models(["big"], definition, answer)
    prices = load_prices(write_prices(tmp_path, "big: {input: 2.0, output: 8.0}\njudge-model: {input: 1, output: 1}\n"))
    cost = run_cost(Store(), run_id, prices)
    assert cost.samples == 6 and cost.completion_tokens == 18  # "yes it is": 3 tokens each
    assert cost.cost_usd == pytest.approx((cost.prompt_tokens * 2.0 + 18 * 8.0) / 1e6)
    assert cost.cost_per_1k_items == pytest.approx(1000 * cost.cost_usd / 6)
    assert cost.judge_prompt_tokens > 0
    assert cost.judge_cost_usd == pytest.approx((cost.judge_prompt_tokens + cost.judge_completion_tokens) / 1e6)
    assert cost.latency_p50_ms is not None and cost.latency_p95_ms >= cost.latency_p50_ms
    shown = json.loads(run_cli("eval", "show", run_id, "--json", "--prices", str(tmp_path / "prices.yaml")).stdout)
    assert shown["gradeloop"]["cost"]["cost_per_1k_items"] == pytest.approx(cost.cost_per_1k_items)
    table = run_cli("eval", "show", run_id, env={"COLUMNS": "200"})
    assert "cost / 1k items" in table.stdout and "no price" in table.stdout  # openai/big has no built-in price


def test_a_machine_priced_per_hour_costs_the_runs_wall_time(tmp_path):
    [run_id] = run_models(["big"], triage_eval(n=4))
    run = Store().get_run(run_id)
    wall = run["finished_at"] - run["started_at"]
    cost = run_cost(Store(), run_id, load_prices(write_prices(tmp_path, "big: {per_hour: 3600}\n")))
    assert cost.wall_s == pytest.approx(wall) and cost.cost_usd == pytest.approx(wall)  # $1 a second
    assert cost.cost_per_1k_items == pytest.approx(1000 * wall / 4)
    free = run_cost(Store(), run_id, load_prices(write_prices(tmp_path, "openai: {per_hour: 0}\n")))
    assert free.price_key == "openai" and free.cost_usd == 0.0


# -- compare: several runs, Holm, non-inferiority, JUnit ---------------------------------------

def test_compare_several_runs_holm_and_cost(three_runs, tmp_path):
    base, mini, nano = three_runs
    cmps = compare_many(Store(), [base, mini, nano], by=["group"], prices=load_prices(write_prices(tmp_path)))
    assert [c["b"]["run_id"] for c in cmps] == [mini, nano] and all(c["a"]["run_id"] == base for c in cmps)
    nano_cmp = cmps[1]
    assert nano_cmp["holm"]["family"] == 2
    from gradeloop.stats import holm
    assert [g["p_holm"] for g in nano_cmp["by"]] == pytest.approx(holm([g["p_value"] for g in nano_cmp["by"]]))
    assert all(g["p_holm"] >= g["p_value"] for g in nano_cmp["by"])
    assert nano_cmp["b"]["cost"]["cost_per_1k_items"] < nano_cmp["a"]["cost"]["cost_per_1k_items"]
    shown = run_cli("eval", "compare", base, mini, nano, "--by", "group", "--prices", str(tmp_path / "prices.yaml"),
                    env={"COLUMNS": "250"})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("paired items") == 2 and "p (Holm)" in shown.stdout and "Holm–Bonferroni" in shown.stdout
    assert "cost / 1k items" in shown.stdout
    listed = json.loads(run_cli("eval", "compare", base, mini, nano, "--json").stdout)
    assert listed["object"] == "list" and len(listed["data"]) == 2
    assert listed["data"][0]["a"]["cost"]["latency_p95_ms"] is not None
    assert run_cli("eval", "compare", base).returncode == 2


def test_non_inferiority_margin_sets_the_exit_code(three_runs):
    base, mini, nano = three_runs
    ok = run_cli("eval", "compare", base, mini, "--non-inferiority-margin", "0.1", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["non_inferiority"]["passed"] is True
    tight = run_cli("eval", "compare", base, mini, "--non-inferiority-margin", "0")
    assert tight.returncode == 1 and "not shown non-inferior" in tight.stderr  # lower bound below 0
    worse = run_cli("eval", "compare", base, nano, "--non-inferiority-margin", "0.02")
    assert worse.returncode == 1 and "lower bound" in worse.stderr
    both = run_cli("eval", "compare", base, mini, nano, "--non-inferiority-margin", "0.1")
    assert both.returncode == 1 and "nano" in both.stderr and "mini" not in both.stderr


def test_junit_xml_parses_and_fails_the_regressions(three_runs, tmp_path):
    base, mini, nano = three_runs
    path = tmp_path / "compare.xml"
    result = run_cli("eval", "compare", base, mini, nano, "--by", "group", "--non-inferiority-margin", "0.1",
                     "--junit", str(path))
    assert result.returncode == 1
    root = ET.parse(path).getroot()
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["openai/mini vs openai/big", "openai/nano vs openai/big"]
    assert [c.get("name") for c in suites[0]] == ["all criteria", "criterion: says yes", "group = easy",
                                                  "group = hard"]
    assert suites[0].get("failures") == "0" and not suites[0].findall(".//failure")
    nano_failures = {c.get("name"): [f.get("type") for f in c.findall("failure")] for c in suites[1]}
    assert nano_failures["all criteria"] == ["regression", "non-inferiority"]
    assert nano_failures["group = easy"] == ["regression"] and nano_failures["group = hard"] == ["regression"]
    assert root.get("tests") == "8" and root.get("failures") == "4"
    assert junit_xml(compare_many(Store(), [base, mini])).count("<failure") == 0
    nowhere = run_cli("eval", "compare", base, mini, "--junit", str(tmp_path / "missing" / "x.xml"))
    assert nowhere.returncode == 2 and "cannot write JUnit XML" in nowhere.stderr


# -- recommend ---------------------------------------------------------------------------------

def test_recommend_picks_the_cheapest_non_inferior_run(three_runs, tmp_path):
    base, mini, nano = three_runs
    rec = recommend(Store(), [base, mini, nano], baseline=base, margin=0.1, prices=load_prices(write_prices(tmp_path)))
    assert rec.recommended["run_id"] == mini and rec.recommended["model"] == "openai/mini"
    verdicts = {c.model: c.verdict for c in rec.candidates}
    assert verdicts == {"openai/mini": "recommended", "openai/nano": "inferior"}
    assert rec.sentence.startswith("use openai/mini: not worse than openai/big by more than 10.0 points (lower bound −")
    assert rec.sentence.endswith("80% cheaper")  # same tokens, a fifth of the price
    out = run_cli("eval", "recommend", base, mini, nano, "--baseline", base, "--margin", "0.1", "--prices",
                  str(tmp_path / "prices.yaml"), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["recommended"]["model"] == "openai/mini" and data["recommended"]["run_id"] == mini
    table = run_cli("eval", "recommend", base, mini, nano, "--baseline", base[:16], "--margin", "0.1",
                    "--prices", str(tmp_path / "prices.yaml"), env={"COLUMNS": "250"})
    assert "inferior" in table.stdout and "use openai/mini" in table.stdout


def test_recommend_says_when_none_qualifies_and_names_the_closest(three_runs, tmp_path):
    base, mini, nano = three_runs
    prices = load_prices(write_prices(tmp_path))
    rec = recommend(Store(), [mini, nano], baseline=base, margin=0.0, prices=prices)
    assert rec.recommended is None and rec.closest["model"] == "openai/mini"
    assert rec.sentence.startswith("no candidate is shown to be within 0.0 points of openai/big; closest: openai/mini")
    Store().conn.execute("UPDATE samples SET latency_ms = 4000 WHERE run_id = ?", (mini,))  # a slow mini
    Store().conn.commit()
    slow = recommend(Store(), [mini, nano], baseline=base, margin=0.1, prices=prices, max_p95_latency_s=2.5)
    assert slow.recommended is None and {c.model: c.verdict for c in slow.candidates}["openai/mini"] == "too slow"
    assert "p95 latency 4.00 s above 2.5 s" in slow.sentence
    unpriced = recommend(Store(), [mini], baseline=base, margin=0.1, prices=load_prices())
    assert unpriced.recommended is None and unpriced.candidates[0].verdict == "no price"
    other = run_models(["big"], triage_eval("other", n=5) | {"data_source": {
        **triage_eval()["data_source"], "source": {"type": "file_content", "content": [{"item": {"q": "z"}}]}}})
    assert run_cli("eval", "recommend", base, other[0], "--baseline", base).returncode == 2  # no shared item


# -- cusp --------------------------------------------------------------------------------------

def cusp_run(epochs: int = 4) -> str:
    """Groups: 'cusp' items pass one sample in four, 'easy' always, 'hard' never."""
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def answer(body):
        q = body["messages"][-1]["content"]
        with lock:
            seen[q] = seen.get(q, 0) + 1
            count = seen[q]
        kind = q.split("-")[0]
        return "yes" if kind == "easy" or (kind == "cusp" and count == 1) else "no"

    definition = triage_eval("cusp eval")
    definition["data_source"]["source"]["content"] = [
        {"item": {"q": f"{kind}-{i}", "kind": kind}} for kind in ("easy", "cusp", "hard") for i in range(6)]
    with FakeOpenAI(responder=answer) as server:
        [run_id] = run_eval(eval_from_dict(definition), ["openai/small"],
                            options=RunOptions(base_url=server.url, epochs=epochs))
    return run_id


def test_cusp_flags_the_right_group_and_writes_a_valid_rft_file(tmp_path):
    from gradeloop.rewards import load_grader_file
    from gradeloop.spec import load_training_file

    run_id = cusp_run()
    report = cusp(Store(), run_id, by="kind")
    groups = {g["value"]: g for g in report.groups}
    assert groups["cusp"]["pass_at_1"] == pytest.approx(0.25) and groups["cusp"]["pass_at_k"] == pytest.approx(1.0)
    assert groups["cusp"]["pass_hat_k"] == 0.0 and groups["easy"]["pass_hat_k"] == 1.0
    assert [g["value"] for g in report.groups if g["rft_target"]] == ["cusp"]
    two = cusp(Store(), run_id, by="kind", k=2)
    assert {g["value"]: g["pass_at_k"] for g in two.groups}["cusp"] == pytest.approx(0.5)
    written = write_rft(Store(), report, tmp_path / "rft.jsonl")
    assert written["rows"] == 6
    grader = load_grader_file(written["grader_file"]).model_dump(exclude_none=True)
    rows = load_training_file(written["file"], "reinforcement", grader=grader)
    assert sorted(r["q"] for r in rows) == [f"cusp-{i}" for i in range(6)]
    assert rows[0]["messages"] == [{"role": "user", "content": rows[0]["q"]}] and grader["reference"] == "yes"
    cli = run_cli("eval", "cusp", run_id, "--by", "kind", "--write-rft", str(tmp_path / "cli.jsonl"),
                  env={"COLUMNS": "200"})
    assert cli.returncode == 0, cli.stderr
    assert "pass^4" in cli.stdout and "yes" in cli.stdout and (tmp_path / "cli.grader.json").exists()
    as_json = json.loads(run_cli("eval", "cusp", run_id, "--json").stdout)
    assert as_json["groups"][0]["value"] is None and sum(i["cusp"] for i in as_json["items"]) == 6


def test_cusp_needs_several_epochs(three_runs):
    with pytest.raises(InputError, match="several"):
        cusp(Store(), three_runs[0])
    assert run_cli("eval", "cusp", three_runs[0]).returncode == 2


# -- health ------------------------------------------------------------------------------------

def test_health_finds_saturated_broken_flaky_and_disagreeing_items():
    """Eight items: q0–q5 every model passes, q6 is flaky for model a at temperature 0, q7 no
    model passes, and there judge b disagrees with judge a."""
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def answer(body):
        text = json.dumps(body["messages"])
        if body["model"].startswith("judge"):
            return '{"result": %d, "steps": []}' % (0 if body["model"] == "judge-b" and "q7" in text else 1)
        q = body["messages"][-1]["content"]
        with lock:
            calls[body["model"] + q] = calls.get(body["model"] + q, 0) + 1
            count = calls[body["model"] + q]
        if q == "q7" or (q == "q6" and body["model"] == "a" and count == 2):
            return "no"
        return f"yes {q}"

    judge = [{"type": "score_model", "name": f"judge {x}", "model": f"judge-{x}", "pass_threshold": 1,
              "input": [{"role": "user", "content": "judge {{ item.q }}: {{ sample.output_text }}"}]} for x in "ab"]
    check = {"type": "string_check", "name": "says yes", "input": "{{ sample.output_text }}", "operation": "like",
             "reference": "yes"}
    definition = triage_eval("health eval", n=8, temperature=0, criteria=[check] + judge)
    with FakeOpenAI(responder=answer) as server:
        options = RunOptions(base_url=server.url, use_cache=False)
        first = run_eval(eval_from_dict(definition), ["openai/a", "openai/b"], options=options)
        second = run_eval(eval_from_dict(definition), ["openai/a"], options=options)
    report = health(Store(), "health eval")
    assert report.models == ["openai/a", "openai/b"] and len(report.runs) == 3 and report.items == 8
    assert sorted(r["item"]["q"] for r in report.saturated) == [f"q{i}" for i in range(6)]
    assert [r["item"]["q"] for r in report.broken] == ["q7"]
    assert [r["item"]["q"] for r in report.flaky] == ["q6"] and report.flaky[0]["models"] == {"openai/a": [1, 2]}
    assert {d["item"]["q"] for d in report.judge_disagreements} == {"q7"}
    assert len(report.judge_disagreements) == 3  # q7 in each of the three runs
    assert report.judge_disagreements[0]["judges"] == {"judge a": True, "judge b": False}
    assert report.timeline[0]["saturated_share"] == pytest.approx(6 / 8)
    assert report.warning is None
    store = Store()  # the same runs, dated: an old month where little is saturated would not warn either
    store.conn.execute("UPDATE runs SET created_at = 1790000000 WHERE id IN (?, ?)", tuple(first))
    store.conn.execute("UPDATE runs SET created_at = 1800000000 WHERE id = ?", (second[0],))
    store.conn.commit()
    assert [t["month"] for t in health(store, "health eval").timeline] == ["2026-09", "2027-01"]
    text = run_cli("eval", "health", "health eval")
    assert text.returncode == 0 and "no model passes (broken or mislabeled?): 1" in text.stdout
    assert run_cli("eval", "health", "no such eval").returncode == 2


def test_health_warns_when_the_eval_is_saturating():
    def answer(body):
        return "yes" if body["messages"][-1]["content"] != "q0" else "no"

    runs = run_models(["a", "b"], triage_eval("easy eval", n=10), answer)
    store = Store()
    store.conn.execute("UPDATE runs SET created_at = 1791000000 WHERE id = ?", (runs[0],))  # 2026-10
    store.conn.execute("UPDATE runs SET created_at = 1795000000 WHERE id = ?", (runs[1],))  # 2026-11
    store.conn.commit()
    report = health(store, "easy eval")
    assert report.warning == "90% of items pass on every model since 2026-10: the eval is saturating; add harder items"
    data = json.loads(run_cli("eval", "health", "easy eval", "--json").stdout)
    assert data["object"] == "gradeloop.eval_health" and data["warning"].startswith("90% of items")
