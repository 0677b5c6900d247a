"""Needles (RULER-style tasks), the shared layouts, the needles grader and the effective length."""

import asyncio
import json

import pytest

from conftest import run_cli
from gradeloop.errors import InputError
from gradeloop.graders import grade
from gradeloop.graders._needles import needles_score
from gradeloop.spec import parse_criteria
from gradeloop.suites import needles
from gradeloop.suites._effective import effective_length
from gradeloop.suites._filler import parse_lengths
from gradeloop.suites._layout import LAYOUTS, PLACEMENTS, Doc, compose, parse_documents
from gradeloop.suites._tokens import get_tokenizer

LENGTHS = [1024, 4096]


@pytest.fixture(scope="module")
def rows():
    return needles.generate(LENGTHS, list(needles.TASKS), layouts=list(LAYOUTS), placements=list(PLACEMENTS))


def test_same_seed_same_items_other_seed_other_items():
    a = needles.generate([1024], ["single", "vartrack"], seed=3)
    assert a == needles.generate([1024], ["single", "vartrack"], seed=3)
    assert a != needles.generate([1024], ["single", "vartrack"], seed=4)


def test_lengths_within_two_percent_in_o200k(rows):
    tok = get_tokenizer()
    for row in rows:
        counted = tok.count(row["messages"][0]["content"])
        assert counted == row["n_tokens"], row["id"]
        assert abs(counted - row["length_bin"]) <= 0.02 * row["length_bin"], (row["id"], counted)


def test_every_task_hides_its_answers_in_the_context(rows):
    assert {r["task"] for r in rows} == set(needles.TASKS)
    for row in rows:
        text = row["messages"][0]["content"]
        assert row["answer"] and all(a in text for a in row["answer"]), row["id"]
    single = next(r for r in rows if r["task"] == "single")
    assert "special magic number" in single["messages"][0]["content"] and len(single["answer"]) == 1
    assert len(next(r for r in rows if r["task"] == "multivalue")["answer"]) == 4
    chain = next(r for r in rows if r["task"] == "vartrack")
    assert len(chain["answer"]) == 5 and f"VAR {chain['answer'][1]} = VAR {chain['answer'][0]}" in \
        chain["messages"][0]["content"]


def test_common_and_frequent_words_answers_are_the_most_common(rows):
    from collections import Counter

    for row in rows:
        if row["task"] not in ("common-words", "frequent-words"):
            continue
        [doc] = parse_documents(row["messages"][0]["content"], row["layout"])
        words = [w for w in doc.content.split() if not w.rstrip(".").isdigit()]
        top = [w for w, _ in Counter(words).most_common(len(row["answer"]) + 1)]
        assert set(top[:len(row["answer"])]) == set(row["answer"]), row["id"]


def test_every_layout_and_placement_renders_and_parses_back():
    docs = [Doc("1", 'A "quoted" <title>', "Line one & two.\nLine two."), Doc("x-2", "Plain", "Short text.")]
    for layout in LAYOUTS:
        for placement in PLACEMENTS:
            text = compose("Do the task.", docs, layout, placement)
            back = parse_documents(text, layout)
            expected = docs if layout != "pipe" else [Doc(d.id, d.title, " ".join(d.content.split())) for d in docs]
            assert back == expected, (layout, placement)
            assert text.startswith("Do the task.") == (placement != "end")
            assert text.endswith("Do the task.") == (placement != "start")
    with pytest.raises(InputError):
        compose("x", docs, "yaml", "start")


def test_rows_carry_variants_and_all_their_documents(rows):
    assert {(r["layout"], r["placement"]) for r in rows} == {(a, b) for a in LAYOUTS for b in PLACEMENTS}
    for row in rows:
        docs = parse_documents(row["messages"][0]["content"], row["layout"])
        assert [d.id for d in docs] == [str(i + 1) for i in range(len(docs))]


def test_parse_lengths():
    assert parse_lengths(["4k,16k", "1m", "4096"]) == [4096, 16384, 1024 * 1024]
    with pytest.raises(InputError, match="tokens"):
        parse_lengths(["12x"])


def test_needles_scoring_like_ruler():
    assert needles_score("The numbers are 123 and 456.", ["123", "456", "789"], "all") == (2 / 3, ["123", "456"])
    assert needles_score("the NUMBER is 789", ["123", "789"], "any")[0] == 1.0
    assert needles_score("nothing", ["123"], "any")[0] == 0.0
    [grader] = parse_criteria([{"type": "needles", "name": "n", "references": "{{ item.answer }}"}])
    item = {"answer": ["Kxyz", "7"]}
    full = asyncio.run(grade(grader, {"output_text": "kXYZ and 7"}, item, None))
    part = asyncio.run(grade(grader, {"output_text": "kxyz only"}, item, None))
    assert (full.score, full.passed) == (1.0, True)
    assert (part.score, part.passed, part.details["missing"]) == (0.5, False, ["7"])


def test_effective_length_rule():
    got = effective_length({4096: 0.9, 8192: 0.8, 16384: 0.7, 32768: 0.8})
    assert got["threshold"] == pytest.approx(0.765) and got["effective_length"] == 8192  # 16k breaks the run
    assert effective_length({4096: 0.9, 8192: 0.9})["effective_length"] == 8192
    assert effective_length({4096: 0.0, 8192: 0.0})["effective_length"] is None
    assert effective_length({4096: 0.9, 8192: 0.5}, absolute=0.5)["effective_length"] == 8192


def _scripted_run(tmp_path, rows):
    """Run a needles eval with a scripted model that answers the short items and fails the long ones."""
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"item": r}) + "\n" for r in rows))
    rules = [{"contains": r["messages"][0]["content"][-400:], "response": " ".join(r["answer"])}
             for r in rows if r["length_bin"] == 1024] + [{"response": "I could not find it."}]
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    definition = needles.eval_definition({"lengths": LENGTHS, "tasks": ["single"]})
    definition["data_source"]["source"]["path"] = str(tmp_path / "rows.jsonl")
    (tmp_path / "eval.json").write_text(json.dumps(definition))
    ran = run_cli("eval", "run", str(tmp_path / "eval.json"), "-m", f"scripted/{tmp_path / 'rules.json'}",
                  "--json", "--no-progress")
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)["data"][0]


def test_effective_length_in_eval_show(tmp_path):
    rows = needles.generate(LENGTHS, ["single"], n=2, placements=["both"])
    run = _scripted_run(tmp_path, rows)
    summary = run["gradeloop"]["effective_length"]
    assert summary["effective_length"] == 1024 and summary["baseline"] == 1.0
    assert [b["pass_rate"] for b in summary["bins"]] == [1.0, 0.0]
    shown = run_cli("eval", "show", run["id"], "--by", "length_bin", "--by", "layout", "--by", "placement")
    assert "effective length: 1024 tokens" in shown.stdout and "By placement" in shown.stdout
    by_bin = json.loads(run_cli("eval", "show", run["id"], "--by", "length_bin", "--json").stdout)
    bins = {r["value"]: r for r in by_bin["gradeloop"]["breakdown"]["length_bin"]}
    assert bins[4096]["prompt_tokens"] > bins[1024]["prompt_tokens"] > 0
    assert bins[1024]["completion_tokens"] > 0


def test_cli_build_and_bad_flags(tmp_path):
    built = run_cli("suite", "needles", "build", "--tokens", "1k", "--task", "single,multikey", "--layout",
                    "xml,json", "--placement", "end", "--out", str(tmp_path / "n"), "--json")
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["items"] == 4
    again = run_cli("suite", "needles", "build", "--tokens", "1k", "--task", "single,multikey", "--layout",
                    "xml,json", "--placement", "end", "--out", str(tmp_path / "m"), "--json")
    assert (tmp_path / "n" / "rows.jsonl").read_bytes() == (tmp_path / "m" / "rows.jsonl").read_bytes()
    assert again.returncode == 0
    bad = run_cli("suite", "needles", "build", "--task", "haystack", "--out", str(tmp_path / "b"))
    assert bad.returncode == 2 and "--task" in bad.stderr and "haystack" in bad.stderr
