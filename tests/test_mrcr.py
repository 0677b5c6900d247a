"""OpenAI-MRCR: the generator (determinism, lengths, needles), the ``mrcr`` grader (the published
rule), the importer of the published records, and runs of a built suite."""

import asyncio
import difflib
import hashlib
import json
import re
from pathlib import Path

import pytest

from conftest import run_cli
from gradeloop import RunOptions, load_eval, run_eval
from gradeloop.graders import grade
from gradeloop.graders._long_context import MRCRGrader, mrcr_score
from gradeloop.report import output_item_objects
from gradeloop.spec import grader_hash
from gradeloop.store import Store
from gradeloop.suites import mrcr
from gradeloop.errors import InputError
from gradeloop.suites._layout import LAYOUTS, PLACEMENTS, parse_documents
from gradeloop.suites._long import length_bin, parse_tokens
from gradeloop.suites._tokens import get_tokenizer

DATA = Path(__file__).parent / "data" / "long"
FINAL = re.compile(r"^Prepend (\w{10}) to the (\d+)(st|nd|rd|th) \(1 indexed\) (.+) about (.+)\. "
                   r"Do not include any other text in your response\.$")


def tokens_of(item, tok):
    return sum(tok.count(m["content"]) for m in item["messages"]) + tok.count(item["answer"])


# ------------------------------------------------------------------------------ grader

def test_grader_follows_the_published_rule():
    answer = "aYooSG8CQgGrey snout in the ferns,\nthe tapir keeps its counsel."
    assert mrcr_score(answer, answer, "aYooSG8CQg") == 1.0
    # no credit without the exact prefix, however close the rest
    assert mrcr_score(answer[10:], answer, "aYooSG8CQg") == 0.0
    assert mrcr_score("Sure! " + answer, answer, "aYooSG8CQg") == 0.0
    assert mrcr_score("ayoosg8cqg" + answer[10:], answer, "aYooSG8CQg") == 0.0
    partial = "aYooSG8CQgGrey snout in the reeds, the tapir sleeps."
    expected = difflib.SequenceMatcher(None, partial[10:], answer[10:]).ratio()
    assert mrcr_score(partial, answer, "aYooSG8CQg") == pytest.approx(expected)
    assert 0.3 < expected < 1.0
    # the prefix alone: compared as an empty response
    assert mrcr_score("aYooSG8CQg", answer, "aYooSG8CQg") == 0.0


def test_grader_type_grades_from_templates_and_hashes():
    grader = MRCRGrader(type="mrcr", name="MRCR")
    item = {"answer": "XYZ123abcdthe poem", "random_string_to_prepend": "XYZ123abcd"}
    full = asyncio.run(grade(grader, {"output_text": "XYZ123abcdthe poem"}, item))
    assert full.score == 1.0 and full.passed and full.details["prefix_found"]
    missing = asyncio.run(grade(grader, {"output_text": "the poem"}, item))
    assert missing.score == 0.0 and not missing.passed and not missing.details["prefix_found"]
    other = MRCRGrader(type="mrcr", name="MRCR", answer="{{ item.gold }}")
    assert grader_hash(grader) == grader_hash(MRCRGrader(type="mrcr", name="MRCR"))
    assert grader_hash(grader) != grader_hash(other)


# ---------------------------------------------------------------------------- generator

def test_bins_and_lengths_parse_as_published():
    assert parse_tokens("8k,32k,128k,1M") == [8192, 32768, 131072, 1048576]
    assert [length_bin(n) for n in (100, 4096, 4097, 8192, 8193, 131072, 1048576, 1048577)] == [
        4096, 4096, 8192, 8192, 16384, 131072, 1048576, 2097152]


def test_same_seed_same_items_other_seed_other_items():
    first = list(mrcr.generate([6000], [2, 4], 2, seed=3))
    assert first == list(mrcr.generate([6000], [2, 4], 2, seed=3))
    other = list(mrcr.generate([6000], [2, 4], 2, seed=4))
    assert [i["answer"] for i in first] != [i["answer"] for i in other]
    # an item does not depend on which other lengths were asked for
    assert list(mrcr.generate([5000, 6000], [2, 4], 2, seed=3))[4:] == first


@pytest.mark.parametrize("target,needles", [(4500, 2), (8192, 8), (20000, 4), (131072, 2)])
def test_length_needles_and_final_turn(target, needles):
    tok = get_tokenizer()
    item = mrcr.generate_item(target, needles, "7:0", tok)
    count = tokens_of(item, tok)
    assert count == item["n_tokens"] and 0.98 * target <= count <= target
    assert item["length_bin"] == length_bin(count)
    messages = item["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * ((len(messages) - 1) // 2) + ["user"]
    assert item["total_messages"] == len(messages)
    assert item["n_chars"] == sum(len(m["content"]) for m in messages)
    prefix, k, _, form, topic = FINAL.match(messages[-1]["content"]).groups()
    assert prefix == item["random_string_to_prepend"] and (form, topic) == (item["form"], item["topic"])
    ask = f"write {'an' if form[0] in 'aeiou' else 'a'} {form} about {topic}"
    asks = [i for i, m in enumerate(messages) if m["content"] == ask]
    assert len(asks) == needles
    desired = item["desired_msg_index"]
    assert desired == asks[int(k) - 1] + 1 and item["answer"] == prefix + messages[desired]["content"]
    # the needles' answers differ from one another, and near misses are among the distractors
    assert len({messages[i + 1]["content"] for i in asks}) == needles
    others = [m["content"] for m in messages[:-1:2] if m["content"] != ask]
    if target > 8000:
        assert any(topic in o for o in others) and any(f" {form} " in o for o in others)


def test_a_million_token_item_meets_its_length():
    tok = get_tokenizer()
    item = mrcr.generate_item(1048576, 8, "1:0", tok)
    assert 0.98 * 1048576 <= tokens_of(item, tok) <= 1048576 and item["length_bin"] == 1048576
    assert len({m["content"] for m in item["messages"][1::2]}) > 0.99 * (len(item["messages"]) // 2)


def test_bad_lengths_and_counts_are_clear_errors(tmp_path):
    for flag, value, words in [("--tokens", "100", "out of range"), ("--tokens", "8q", "not a length"),
                               ("--needles", "3", "unknown value '3'")]:
        result = run_cli("suite", "mrcr", "build", flag, value, "--n", "1", "--out", str(tmp_path))
        assert result.returncode == 2 and flag in result.stderr and words in result.stderr
        assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------ layouts

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_every_layout_and_placement_renders_parses_back_and_meets_its_length(layout, placement):
    tok, target = get_tokenizer(), 9000
    item = mrcr.generate_item(target, 4, "3:0", tok, layout, placement)
    [message] = item["messages"]
    text = message["content"]
    assert message["role"] == "user" and (item["layout"], item["placement"]) == (layout, placement)
    count = tok.count(text) + tok.count(item["answer"])
    assert count == item["n_tokens"] and 0.98 * target <= count <= target and item["n_chars"] == len(text)
    docs = parse_documents(text, layout)
    assert [d.id for d in docs] == [str(i) for i in range(1, len(docs) + 1)]
    assert [d.title for d in docs] == ["user", "assistant"] * (len(docs) // 2)
    assert item["total_messages"] == len(docs) + 1
    # the k-th needle's answer is document desired_msg_index + 1, the answer without its prefix
    needle = item["answer"][10:] if layout != "pipe" else " ".join(item["answer"][10:].split())
    assert docs[item["desired_msg_index"]].content == needle
    ask = f"write {'an' if item['form'][0] in 'aeiou' else 'a'} {item['form']} about {item['topic']}"
    assert [d.content for d in docs].count(ask) == 4
    request = f"Prepend {item['random_string_to_prepend']} to the "
    assert text.count(request) == (2 if placement == "both" else 1)
    assert (request in text.split("<documents>")[0]) == (placement != "end")
    assert (request in text.split("</documents>")[1]) == (placement != "start")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_long_item_in_a_document_layout_meets_its_length(layout):
    tok, target = get_tokenizer(), 131072  # long enough for the first budget to come from a probe
    item = mrcr.generate_item(target, 8, "2:0", tok, layout, "both")
    assert 0.98 * target <= tok.count(item["messages"][0]["content"]) + tok.count(item["answer"]) <= target
    assert len(parse_documents(item["messages"][0]["content"], layout)) == item["total_messages"] - 1


def test_variants_are_deterministic_and_tagged_and_the_default_is_the_published_form(tmp_path):
    rows = list(mrcr.generate([6000], [2], 2, seed=5, layouts=["native", "pipe"], placements=["start", "both"]))
    assert [(r["layout"], r["placement"]) for r in rows] == [("native", "native"), ("pipe", "start"),
                                                           ("pipe", "both")] * 2
    assert rows == list(mrcr.generate([6000], [2], 2, seed=5, layouts=["native", "pipe"],
                                      placements=["start", "both"]))
    plain = list(mrcr.generate([6000], [2], 2, seed=5))
    assert [{k: v for k, v in r.items() if k not in ("layout", "placement")} for r in rows[::3]] == plain
    assert all("layout" not in r for r in plain)
    # the same request, hash and needle answers in every variant of an item
    assert len({(r["random_string_to_prepend"], r["answer"]) for r in rows[:3]}) == 1
    with pytest.raises(InputError, match="placement applies"):
        list(mrcr.generate([6000], [2], 1, layouts=["native"], placements=["start"]))


def test_default_build_is_byte_identical_to_the_published_form_before_layouts(tmp_path):
    # rows.jsonl of this build as written before layouts existed (o200k_base, bpe-openai 0.1.4)
    mrcr.build([5000], [2, 4], 1, 1, tmp_path / "m")
    digest = hashlib.sha256((tmp_path / "m" / "rows.jsonl").read_bytes()).hexdigest()
    assert digest == "aee4a40ce1be226ccf5debe25b1fb18f395602a54b451b860e70ddec5d8da6a5"


def test_cli_layouts_run_and_report_per_variant(tmp_path):
    built = run_cli("suite", "mrcr", "build", "--tokens", "5k", "--needles", "2", "--n", "1", "--layout",
                    "native,xml", "--placement", "start,end", "--out", str(tmp_path / "suite"), "--json")
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert summary["counts"]["layout"] == {"native": 1, "xml": 2}
    assert summary["counts"]["placement"] == {"native": 1, "start": 1, "end": 1}
    rows = [json.loads(line)["item"] for line in (tmp_path / "suite" / "rows.jsonl").read_text().splitlines()]
    rules = tmp_path / "rules.jsonl"  # the right answer to the native and start items, a wrong one at the end
    rules.write_text(json.dumps({"contains": "</documents>\n\nThe documents", "response": "no"}) + "\n"
                     + json.dumps({"contains": rows[0]["random_string_to_prepend"], "response": rows[0]["answer"]}))
    ran = run_cli("eval", "run", summary["eval"], "-m", f"scripted/{rules}", "--json", "--no-progress",
                  "--by", "layout", "--by", "placement")
    assert ran.returncode == 0, ran.stderr
    by = json.loads(ran.stdout)["data"][0]["gradeloop"]["breakdown"]
    assert {r["value"]: r["mean_score"] for r in by["placement"]} == {"native": 1.0, "start": 1.0, "end": 0.0}
    assert {r["value"]: r["mean_score"] for r in by["layout"]} == {"native": 1.0, "xml": 0.5}
    bad = run_cli("suite", "mrcr", "build", "--layout", "html", "--out", str(tmp_path / "b"))
    assert bad.returncode == 2 and "--layout" in bad.stderr and "Traceback" not in bad.stderr


# ----------------------------------------------------------------------------- importer

def test_import_reads_published_jsonl_and_parquet(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    records = [json.loads(line) for line in open(DATA / "mrcr_records.jsonl")]
    pq.write_table(pyarrow.Table.from_pylist(records), tmp_path / "mrcr.parquet")
    for source in (DATA / "mrcr_records.jsonl", tmp_path / "mrcr.parquet"):
        summary = mrcr.import_records(source, tmp_path / source.suffix[1:])
        rows = [json.loads(line)["item"] for line in open(summary["rows"])]
        assert summary["items"] == 2 and len(rows) == 2
        for row, record in zip(rows, records):
            assert row["messages"] == json.loads(record["prompt"])
            assert {k: row[k] for k in record if k != "prompt"} == {k: v for k, v in record.items() if k != "prompt"}
            assert row["messages"][row["desired_msg_index"]]["content"] == row["answer"][10:]
            assert row["length_bin"] == 4096 and row["n_tokens"] > 0


def test_import_bad_record_names_file_line_field(tmp_path):
    lines = open(DATA / "mrcr_records.jsonl").read().splitlines()
    broken = json.loads(lines[1])
    broken["prompt"] = "not json"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines[0] + "\n" + json.dumps(broken) + "\n")
    result = run_cli("suite", "mrcr", "import", str(bad), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "bad.jsonl:2: prompt:" in result.stderr
    assert not any((tmp_path / "out").iterdir())  # nothing half-written


# --------------------------------------------------------------------------- end to end

def test_built_suite_runs_and_scores_as_published(tmp_path):
    result = run_cli("suite", "mrcr", "build", "--tokens", "5k", "--needles", "2,4", "--n", "2", "--seed", "1",
                     "--out", str(tmp_path / "suite"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["items"] == 4 and summary["counts"]["length_bin"] == {"8192": 4}
    spec = load_eval(summary["eval"])
    items = [r.item for r in spec.rows]
    partial = items[2]["random_string_to_prepend"] + items[2]["answer"][10:][: len(items[2]["answer"]) // 2]
    replies = [items[0]["answer"], items[1]["answer"][10:], partial]
    rules = tmp_path / "rules.jsonl"
    rules.write_text("".join(json.dumps({"contains": i["random_string_to_prepend"], "response": r}) + "\n"
                             for i, r in zip(items, replies)))
    [run_id] = run_eval(spec, [f"scripted/{rules}"], options=RunOptions())
    scores = {o["datasource_item"]["random_string_to_prepend"]: o["results"][0]["score"]
              for o in output_item_objects(Store(), run_id)}
    want = [1.0, 0.0, mrcr_score(partial, items[2]["answer"], items[2]["random_string_to_prepend"]), 0.0]
    assert [scores[i["random_string_to_prepend"]] for i in items] == pytest.approx(want)
    assert 0.4 < want[2] < 0.9


@pytest.mark.slow
def test_embedded_model_runs_a_short_mrcr(tmp_path):
    build = run_cli("suite", "mrcr", "build", "--tokens", "6k", "--needles", "2", "--n", "2",
                    "--out", str(tmp_path / "suite"), "--tokenizer", "local/smollm2", "--max-completion-tokens", "64")
    assert build.returncode == 0, build.stderr
    result = run_cli("eval", "run", str(tmp_path / "suite" / "eval.yaml"), "--model", "local/smollm2",
                     "--limit", "2", "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    [run] = json.loads(result.stdout)["data"]
    assert run["status"] == "completed" and run["result_counts"]["total"] == 2
    assert run["result_counts"]["errored"] == 0
