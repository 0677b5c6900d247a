"""Counterfactual grounding: the fact table, the generator, the grader and the rates a run shows."""

import asyncio
import json

import pytest

from conftest import run_cli
from gradeloop.graders import grade
from gradeloop.graders._needles import grounding_verdict
from gradeloop.spec import parse_criteria
from gradeloop.suites import grounding
from gradeloop.suites._facts import KINDS, facts
from gradeloop.suites._layout import LAYOUTS, PLACEMENTS, parse_documents


def test_fact_table_has_hundreds_of_facts_of_every_kind():
    table = facts()
    assert len(table) >= 200 and {f["kind"] for f in table} == set(KINDS)
    assert len({(f["kind"], f["subject"]) for f in table}) == len(table)
    for fact in table:
        assert fact["value"] not in fact["alternatives"]


def test_counterfactuals_differ_from_the_truth_for_every_fact():
    import random

    rng = random.Random(0)
    for fact in facts():
        value = grounding.counterfactual(rng, fact)
        assert value.lower() not in str(fact["value"]).lower() and str(fact["value"]).lower() not in value.lower()


def test_deterministic_and_every_variant_holds_every_document():
    rows = grounding.generate(12, seed=5, layouts=list(LAYOUTS), placements=list(PLACEMENTS))
    assert rows == grounding.generate(12, seed=5, layouts=list(LAYOUTS), placements=list(PLACEMENTS))
    assert rows != grounding.generate(12, seed=6, layouts=list(LAYOUTS), placements=list(PLACEMENTS))
    assert len(rows) == 12 * 9
    for row in rows:
        text = row["messages"][0]["content"]
        docs = parse_documents(text, row["layout"])
        assert len(docs) == 4 and sorted(d.id for d in docs) == ["1", "2", "3", "4"], row["id"]
        joined = " ".join(d.content for d in docs)
        if row["kind"] == "answerable":
            assert row["answer"] in joined and row["world"] not in joined.split(". ")[0]
        else:
            assert row["answer"] == ""
        assert row["fallback"] in text


def test_a_quarter_are_unanswerable_and_the_fallback_is_configurable():
    rows = grounding.generate(40, fallback="No idea from these files")
    assert sum(r["kind"] == "unanswerable" for r in rows) == 10
    assert all("No idea from these files" in r["messages"][0]["content"] for r in rows)


def test_verdicts_on_crafted_responses():
    assert grounding_verdict("The capital is Lyon.", "Lyon", "Paris", "I don't know") == \
        {"passed": True, "rates": {"faithful": 1, "memorized": 0}}
    assert grounding_verdict("Paris, of course.", "Lyon", "Paris", "I don't know") == \
        {"passed": False, "rates": {"faithful": 0, "memorized": 1}}
    assert grounding_verdict("Lyon per the documents, but really Paris", "Lyon", "Paris", "x")["passed"] is False
    assert grounding_verdict("i don't KNOW based on the documents.", "", "Paris",
                             "I don't know based on the documents") == \
        {"passed": True, "rates": {"confident_unanswerable": 0}}
    assert grounding_verdict("It is 1989.", "", "1989", "I don't know")["rates"] == {"confident_unanswerable": 1}
    [grader] = parse_criteria(grounding.eval_definition({"n": 1, "seed": 0})["testing_criteria"])
    item = {"answer": "1994", "world": "1989", "fallback": "I don't know"}
    result = asyncio.run(grade(grader, {"output_text": "1994"}, item, None))
    assert (result.score, result.passed, result.details["rates"]["faithful"]) == (1.0, True, 1)


def test_run_shows_the_three_rates(tmp_path):
    built = run_cli("suite", "grounding", "build", "--n", "8", "--layout", "xml,pipe", "--placement", "start,both",
                    "--out", str(tmp_path / "g"), "--json")
    assert built.returncode == 0, built.stderr
    rows = [json.loads(line)["item"] for line in (tmp_path / "g" / "rows.jsonl").read_text().splitlines()]
    # a model that is faithful on xml, answers from memory on pipe, and never abstains
    rules = [{"contains": r["messages"][0]["content"][:2000], "response": r["answer"] or r["world"]}
             for r in rows if r["layout"] == "xml"]
    rules += [{"response": "I am not sure"}]
    for r in rows:
        if r["layout"] == "pipe":
            rules.insert(0, {"contains": r["messages"][0]["content"][-1500:], "response": r["world"]})
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    ran = run_cli("eval", "run", str(tmp_path / "g" / "eval.yaml"), "-m", f"scripted/{tmp_path / 'rules.json'}",
                  "--by", "layout", "--json", "--no-progress")
    assert ran.returncode == 0, ran.stderr
    run = json.loads(ran.stdout)["data"][0]
    [rates] = run["gradeloop"]["criterion_rates"]
    answerable = sum(r["kind"] == "answerable" for r in rows)
    assert rates["rates"]["faithful"] == {"rate": 0.5, "n": answerable}
    assert rates["rates"]["memorized"] == {"rate": 0.5, "n": answerable}
    assert rates["rates"]["confident_unanswerable"]["rate"] == 1.0
    by_layout = {r["value"]: r["pass_rate"] for r in run["gradeloop"]["breakdown"]["layout"]}
    assert by_layout["pipe"] == 0.0 and by_layout["xml"] == pytest.approx(answerable / 2 / (len(rows) / 2))
    shown = run_cli("eval", "show", run["id"], "--by", "kind", "--by", "placement")
    assert "rates of answers from the documents: faithful 50.0%" in shown.stdout and "By placement" in shown.stdout
