"""Graphwalks: the generator (determinism, lengths, answers), the ``graphwalks`` grader in both
modes (the card's code as published, and corrected), the importer, and runs of a built suite."""

import asyncio
import hashlib
import json
import re
from pathlib import Path

import pytest

from conftest import run_cli
from gradeloop import RunOptions, load_eval, run_eval
from gradeloop.graders import grade
from gradeloop.graders._long_context import GraphwalksGrader, graphwalks_f1, graphwalks_nodes
from gradeloop.report import output_item_objects
from gradeloop.spec import grader_hash
from gradeloop.store import Store
from gradeloop.suites import graphwalks as gw
from gradeloop.errors import InputError
from gradeloop.suites._layout import LAYOUTS, PLACEMENTS, parse_documents
from gradeloop.suites._long import length_bin
from gradeloop.suites._tokens import get_tokenizer

DATA = Path(__file__).parent / "data" / "long"
EDGE = re.compile(r"^([0-9a-f]{10}) -> ([0-9a-f]{10})$")


def f1(response, truth, mode="corrected"):
    return graphwalks_f1(response, truth, mode)[0]


# ------------------------------------------------------------------------------ grader

def test_corrected_mode_scores_set_f1():
    truth = ["aa", "bb", "cc"]
    assert f1("Final Answer: [aa, bb, cc]", truth) == 1.0
    assert f1("thinking...\nFinal Answer: [cc,bb , aa, aa]", truth) == 1.0  # a set: order, spaces, repeats
    assert f1("Final Answer: [aa, dd]", truth) == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert f1("Final Answer: ['aa', \"bb\", cc]", truth) == 1.0
    assert f1("Final Answer: [dd]", truth) == 0.0
    assert f1("Final Answer: []", truth) == 0.0
    assert f1("Final Answer: []", []) == 1.0  # both empty
    assert f1("Final Answer: [aa]", []) == 0.0
    assert f1("Final Answer: [aa, bb, cc]\n\n", truth) == 1.0  # trailing blank lines are not the last line
    assert f1("Final Answer: [aa, bb, cc]\nHope this helps!", truth) == 0.0  # extra text after: no answer
    assert f1("The answer is aa, bb, cc", truth) == 0.0
    assert graphwalks_nodes("Final Answer: [aa, bb]. Done.") == (["aa", "bb"], False)


def test_card_mode_reproduces_the_cards_code():
    truth = ["aa", "bb", "cc"]
    # the first element keeps "Final Answer: [": it never matches
    assert graphwalks_nodes("Final Answer: [aa, bb, cc]", "card") == (["Final Answer: [aa", "bb", "cc"], False)
    assert f1("Final Answer: [aa, bb, cc]", truth, "card") == pytest.approx(2 / 3)  # precision = recall = 2/3
    assert f1("Final Answer: [aa, bb, cc]", truth, "corrected") == 1.0
    # an empty list reads as one element, and precision = recall = 0 gives the card's `else 1`
    assert graphwalks_nodes("Final Answer: []", "card") == (["Final Answer:"], False)
    assert f1("Final Answer: []", [], "card") == 1.0
    assert f1("Final Answer: [dd]", truth, "card") == 1.0  # wrong, and scored 1 by the card's formula
    # the very last line, even if blank: a trailing newline means no answer
    assert f1("Final Answer: [xx, aa, bb, cc]\n", truth, "card") == 0.0
    assert f1("Final Answer: [xx, aa, bb, cc]\nextra", truth, "card") == 0.0
    assert f1("Final Answer: [xx, aa, bb, cc]", truth, "card") == pytest.approx(6 / 7)  # p = 3/4, r = 1


def test_grader_type_reads_the_item_list_and_hashes():
    grader = GraphwalksGrader(type="graphwalks", name="F1")
    item = {"answer_nodes": ["aa", "bb"]}
    good = asyncio.run(grade(grader, {"output_text": "Final Answer: [bb, aa]"}, item))
    assert good.score == 1.0 and good.passed and good.details["nodes"] == ["bb", "aa"]
    half = asyncio.run(grade(grader, {"output_text": "Final Answer: [aa]"}, item))
    assert half.score == pytest.approx(2 / 3) and not half.passed
    bad = asyncio.run(grade(grader, {"output_text": "Final Answer: [aa]"}, {"answer_nodes": "aa"}))
    assert bad.score == 0.0 and bad.errors == {"invalid_variable_error": True}
    card = GraphwalksGrader(type="graphwalks", name="F1", mode="card")
    assert grader_hash(card) != grader_hash(grader)
    assert grader_hash(grader) == grader_hash(GraphwalksGrader(type="graphwalks", name="F1"))


# ---------------------------------------------------------------------------- generator

def parse(prompt):
    body = prompt.split("Here is the graph to operate on:\nThe graph has the following edges:\n")[1]
    lines, rest = body.split("\n\nOperation:\n")
    edges = [EDGE.match(line).groups() for line in lines.split("\n")]
    return edges, rest.split("\n")[0]


def test_bfs_and_parents_on_a_small_graph():
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "a"), ("d", "e"), ("e", "e")]
    assert gw.bfs_at_depth(edges, "a", 1) == ["b", "c"]
    assert gw.bfs_at_depth(edges, "a", 2) == ["d"]
    assert gw.bfs_at_depth(edges, "a", 3) == ["e"]  # "a" again at depth 3 does not count
    assert gw.bfs_at_depth(edges, "a", 4) == []
    assert gw.parents_of(edges, "d") == ["b", "c"] and gw.parents_of(edges, "e") == ["d"]


@pytest.mark.parametrize("target,problem", [(4500, "bfs"), (8192, "parents"), (40000, "bfs"), (131072, "parents")])
def test_lengths_layout_and_answers(target, problem):
    tok = get_tokenizer()
    item = gw.generate_item(target, problem, "5:0", tok)
    count = tok.count(item["prompt"])
    assert count == item["n_tokens"] and 0.98 * target <= count <= target
    assert item["length_bin"] == length_bin(count) and item["prompt_chars"] == len(item["prompt"])
    assert item["prompt"].startswith("You will be given a graph as a list of directed edges.")
    assert item["prompt"].endswith("in the very last line of your response.\n")
    edges, op = parse(item["prompt"])
    if problem == "bfs":
        node, depth = re.match(r"Perform a BFS from node (\w+) with depth (\d)\.$", op).groups()
        assert item["answer_nodes"] == gw.bfs_at_depth(edges, node, int(depth))
    else:
        node = re.match(r"Find the parents of node (\w+)\.$", op).group(1)
        assert item["answer_nodes"] == gw.parents_of(edges, node) and node not in item["answer_nodes"]
    assert item["answer_nodes"] and item["problem_type"] == problem


def test_deterministic_and_a_million_tokens():
    first = list(gw.generate([6000], ["bfs", "parents"], 2, seed=2))
    assert first == list(gw.generate([6000], ["bfs", "parents"], 2, seed=2))
    assert [i["prompt"] for i in first] != [i["prompt"] for i in gw.generate([6000], ["bfs", "parents"], 2, seed=3)]
    tok = get_tokenizer()
    item = gw.generate_item(1048576, "bfs", "1:0", tok)
    assert 0.98 * 1048576 <= tok.count(item["prompt"]) <= 1048576


# ------------------------------------------------------------------------------ layouts

PAIR = re.compile(r"([0-9a-f]{10}) -> ([0-9a-f]{10})")
OPERATION = re.compile(r"Operation:\n(Perform a BFS from node ([0-9a-f]{10}) with depth (\d)\.|"
                       r"Find the parents of node ([0-9a-f]{10})\.)")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_every_layout_and_placement_renders_parses_back_and_meets_its_length(layout, placement):
    tok, target, problem = get_tokenizer(), 12000, "bfs" if placement != "end" else "parents"
    item = gw.generate_item(target, problem, "4:0", tok, layout, placement)
    text = item["prompt"]
    count = tok.count(text)
    assert count == item["n_tokens"] and 0.98 * target <= count <= target and item["prompt_chars"] == len(text)
    assert (item["layout"], item["placement"]) == (layout, placement)
    docs = parse_documents(text, layout)
    edges = [pair for d in docs for pair in PAIR.findall(d.content)]
    assert all(len(PAIR.findall(d.content)) == gw.EDGES_PER_DOC for d in docs[:-1]) and edges
    assert [d.id for d in docs] == [str(k) for k in range(1, len(docs) + 1)]
    assert docs[1].title == f"edges {gw.EDGES_PER_DOC + 1}-{2 * gw.EDGES_PER_DOC}"
    operations = OPERATION.findall(text)
    assert len(operations) == (2 if placement == "both" else 1)
    _, node, depth, parent_of = operations[0]
    want = gw.bfs_at_depth(edges, node, int(depth)) if problem == "bfs" else gw.parents_of(edges, parent_of)
    assert item["answer_nodes"] == want and want
    assert ("Operation:" in text.split("<documents>")[0]) == (placement != "end")
    assert ("Operation:" in text.split("</documents>")[1]) == (placement != "start")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_long_prompt_in_a_document_layout_meets_its_length(layout):
    tok, target = get_tokenizer(), 131072  # long enough for the first budget to come from a probe
    item = gw.generate_item(target, "parents", "2:0", tok, layout, "start")
    assert 0.98 * target <= tok.count(item["prompt"]) <= target
    docs = parse_documents(item["prompt"], layout)
    assert len(docs) > 30 and item["answer_nodes"] == gw.parents_of(
        [p for d in docs for p in PAIR.findall(d.content)], item["node"])


def test_variants_are_deterministic_and_tagged_and_the_default_is_the_published_form(tmp_path):
    args = ([6000], ["bfs"], 2, 3, None, ["json", "native"], None)
    rows = list(gw.generate(*args))
    assert rows == list(gw.generate(*args))
    assert [(r["layout"], r["placement"]) for r in rows] == [("json", "both"), ("native", "native")] * 2
    plain = list(gw.generate([6000], ["bfs"], 2, seed=3))
    assert [{k: v for k, v in r.items() if k not in ("layout", "placement")} for r in rows[1::2]] == plain
    assert all("layout" not in r for r in plain)
    with pytest.raises(InputError, match="placement applies"):
        list(gw.generate([6000], ["bfs"], 1, layouts=["native"], placements=["end"]))
    # rows.jsonl of this build as written before layouts existed (o200k_base, bpe-openai 0.1.4)
    gw.build([5000], ["bfs", "parents"], 1, 1, tmp_path / "g")
    digest = hashlib.sha256((tmp_path / "g" / "rows.jsonl").read_bytes()).hexdigest()
    assert digest == "8427d34d1652453902eb99524bdc17c1234c23cdb312ffa680165d6217e7187b"


def test_cli_layouts_build_and_run(tmp_path):
    built = run_cli("suite", "graphwalks", "build", "--tokens", "5k", "--problem", "parents", "--n", "1",
                    "--layout", "xml,pipe", "--placement", "end", "--out", str(tmp_path / "g"), "--json")
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert summary["counts"]["layout"] == {"xml": 1, "pipe": 1} and summary["counts"]["placement"] == {"end": 2}
    rows = [json.loads(line)["item"] for line in (tmp_path / "g" / "rows.jsonl").read_text().splitlines()]
    rules = tmp_path / "rules.jsonl"
    rules.write_text(json.dumps({"contains": "ID: 1 | TITLE:", "response": "Final Answer: []"}) + "\n" + json.dumps(
        {"contains": "Find the parents", "response": "Final Answer: [" + ", ".join(rows[0]["answer_nodes"]) + "]"}))
    ran = run_cli("eval", "run", summary["eval"], "-m", f"scripted/{rules}", "--json", "--no-progress",
                  "--by", "layout")
    assert ran.returncode == 0, ran.stderr
    by = json.loads(ran.stdout)["data"][0]["gradeloop"]["breakdown"]["layout"]
    assert {r["value"]: r["mean_score"] for r in by} == {"xml": 1.0, "pipe": 0.0}


# ----------------------------------------------------------------------------- importer

def test_import_reads_published_jsonl_and_parquet(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    records = [json.loads(line) for line in open(DATA / "graphwalks_records.jsonl")]
    pq.write_table(pyarrow.Table.from_pylist(records), tmp_path / "gw.parquet")
    for source in (DATA / "graphwalks_records.jsonl", tmp_path / "gw.parquet"):
        result = run_cli("suite", "graphwalks", "import", str(source), "--out", str(tmp_path / source.suffix[1:]),
                         "--json")
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["counts"]["problem_type"] == {"bfs": 1, "parents": 2}
        rows = [json.loads(line)["item"] for line in open(summary["rows"])]
        for row, record in zip(rows, records):
            assert {k: row[k] for k in record} == record
            edges, _ = parse(row["prompt"])
            assert len(edges) == 6
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**records[0], "problem_type": "dfs"}) + "\n")
    result = run_cli("suite", "graphwalks", "import", str(bad), "--out", str(tmp_path / "bad"))
    assert result.returncode == 2 and "bad.jsonl:1: problem_type:" in result.stderr


# --------------------------------------------------------------------------- end to end

def test_built_suite_runs_and_scores(tmp_path):
    summary = gw.build([5000], ["bfs", "parents"], 2, 1, tmp_path / "suite")
    assert summary["items"] == 4 and summary["counts"]["problem_type"] == {"bfs": 2, "parents": 2}
    spec = load_eval(summary["eval"])
    items = [r.item for r in spec.rows]
    replies = ["Final Answer: [" + ", ".join(items[0]["answer_nodes"]) + "]",
               "Let me see.\nFinal Answer: [" + ", ".join(items[1]["answer_nodes"] + ["0123456789"]) + "]",
               "Final Answer: [" + ", ".join(items[2]["answer_nodes"]) + "]\nDone."]
    rules = tmp_path / "rules.jsonl"
    rules.write_text("".join(json.dumps({"contains": parse(i["prompt"])[1], "response": r}) + "\n"
                             for i, r in zip(items, replies)))
    [run_id] = run_eval(spec, [f"scripted/{rules}"], options=RunOptions())
    scores = [o["results"][0]["score"] for o in sorted(output_item_objects(Store(), run_id),
                                                      key=lambda o: items.index(o["datasource_item"]))]
    n = len(items[1]["answer_nodes"])
    assert scores == pytest.approx([1.0, 2 * n / (2 * n + 1), 0.0, 0.0])


def test_cli_build_and_bad_flags(tmp_path):
    result = run_cli("suite", "graphwalks", "build", "--tokens", "5k", "--problem", "parents", "--n", "1",
                     "--mode", "card", "--out", str(tmp_path / "g"))
    assert result.returncode == 0 and "parents 1" in result.stdout
    assert "mode: card" in (tmp_path / "g" / "eval.yaml").read_text()
    bad = run_cli("suite", "graphwalks", "build", "--mode", "exact", "--out", str(tmp_path / "h"))
    assert bad.returncode == 2 and "--mode" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_embedded_model_runs_a_short_graphwalks(tmp_path):
    build = run_cli("suite", "graphwalks", "build", "--tokens", "4k", "--n", "1", "--out", str(tmp_path / "g"),
                    "--tokenizer", "local/smollm2", "--max-completion-tokens", "48")
    assert build.returncode == 0, build.stderr
    result = run_cli("eval", "run", str(tmp_path / "g" / "eval.yaml"), "--model", "local/smollm2",
                     "--limit", "2", "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    [run] = json.loads(result.stdout)["data"]
    assert run["status"] == "completed" and run["result_counts"]["errored"] == 0
