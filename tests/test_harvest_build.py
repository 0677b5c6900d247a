"""Building evals from harvested traffic: criteria from a use case's instructions and params,
the stratified split, the leakage check, fine-tuning files, dataset versions named by runs,
and `eval run` on what was built."""

from __future__ import annotations

import asyncio
import json
import random
import re

import pytest
import yaml

from gradeloop import RunOptions, Store, run_eval, run_object
from gradeloop.errors import InputError
from gradeloop.graders import grade
from gradeloop.harvest import Topic, from_chat, ingest
from gradeloop.harvest._build import build, parse_split, split_by_topic
from gradeloop.harvest._criteria import extract_criteria, reference_criterion
from gradeloop.harvest._shingle import jaccard, shingles, user_text
from gradeloop.spec import load_eval, load_training_file, parse_criteria
from gradeloop.templating import sample_namespace
from gradeloop.testing import FakeOpenAI

from conftest import run_cli

SYSTEM = ("You are the support assistant of Acme for order {order}. Answer in under 50 words. "
          "Do not use commas. End your answer with 'Is there anything else?' "
          "Be warm and mention the order status when it helps.")
TEMPLATE = SYSTEM.replace("{order}", "<*>")

# three kinds of request, each phrased many ways, so topics are real groups and no two
# requests are near duplicates by accident
_OPEN = ["Hi there.", "Hello!", "Good morning team.", "Hey.", "Quick question.", "Sorry to bother you.", "", "Hiya,"]
_TOPICS = {
    "shipping": ["where is my {p}", "my {p} has not arrived yet", "can you ship the {p} to my office instead",
                 "the tracking for my {p} stopped updating", "how long does delivery of a {p} take"],
    "refunds": ["I want my money back for the {p}", "how do I return a broken {p}", "the refund for my {p} is late",
                "can I get a partial refund because the {p} is scratched", "you charged me twice for the {p}"],
    "account": ["I cannot log in to order another {p}", "please reset my password so I can review the {p}",
                "how do I change the email on the account I used for the {p}",
                "my account got locked while buying a {p}", "delete my account after the {p} arrives"],
}
_PRODUCTS = ["kettle", "garden hose", "desk lamp", "bicycle pump", "rain jacket", "coffee grinder", "yoga mat",
             "phone case", "toaster", "backpack", "wool blanket", "chess set"]
_CLOSE = ["Thanks.", "Cheers!", "Please help.", "It is urgent.", "Order placed {d} days ago.", ""]


def _questions(n_per_topic: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out, seen = [], set()
    for topic, cores in _TOPICS.items():
        while sum(1 for t, _ in out if t == topic) < n_per_topic:
            text = " ".join(p for p in (rng.choice(_OPEN), rng.choice(cores).format(p=rng.choice(_PRODUCTS)) + "?",
                                        rng.choice(_CLOSE).format(d=rng.randint(2, 30))) if p)
            if text not in seen and all(jaccard(shingles(text), shingles(q)) < 0.8 for _, q in out):
                seen.add(text)
                out.append((topic, text))
    return out


def _exchange(question: str, answer: str | None, *, system: str = SYSTEM, order: int = 1, **params) -> tuple:
    request = {"model": "gpt-4.1-mini", "messages": [{"role": "system", "content": system.format(order=order)},
                                                     {"role": "user", "content": question}], **params}
    message = {"role": "assistant", "content": answer}
    response = {"id": "c", "object": "chat.completion", "created": 1_760_000_000 + order, "model": "gpt-4.1-mini",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    return request, response


def _cluster(store: Store, exchanges: list[tuple], *, topics: list[str] | None = None,
             feedback: dict[int, float] | None = None, template: str = TEMPLATE) -> tuple[int, dict[str, str]]:
    """Ingest exchanges, put them all in one cluster; returns its id and record id → topic."""
    entries = [(f"t.jsonl:{i}", from_chat(req, resp, feedback=(feedback or {}).get(i)))
               for i, (req, resp) in enumerate(exchanges)]
    report = ingest(store, entries, source="import:test", redactor=None)
    ids = store.harvest_assign_clusters({"acme": template}, {rid: "acme" for rid in report.record_ids})
    return ids["acme"], dict(zip(report.record_ids, topics or ["all"] * len(exchanges)))


def _traffic(store: Store, n_per_topic: int = 20, **params) -> tuple[int, dict[str, str]]:
    qs = _questions(n_per_topic)
    answers = ["Your parcel left our depot today and arrives soon. Is there anything else?" if i % 2 else None
               for i in range(len(qs))]
    exchanges = [_exchange(q, a or "We are on it. Is there anything else?", order=i, temperature=0, seed=i, **params)
                 for i, ((_, q), a) in enumerate(zip(qs, answers))]
    feedback = {i: 1.0 for i in range(0, len(qs), 3)}
    return _cluster(store, exchanges, topics=[t for t, _ in qs], feedback=feedback)


async def _grade_all(criteria: list[dict], sample: dict, item: dict | None = None) -> dict[str, bool]:
    graders = parse_criteria(criteria)
    results = [await grade(g, sample, item or {}) for g in graders]
    return {g.name: bool(r.passed) for g, r in zip(graders, results)}


# -- criteria ----------------------------------------------------------------------------------

def test_constraints_stated_in_a_system_prompt_become_criteria_that_grade_good_and_bad():
    criteria = extract_criteria("You help with orders. Answer in under 50 words. Respond in JSON. "
                                "Do not use commas.", [])
    ids = {c["constraints"][0]["id"]: c["constraints"][0] for c in criteria.testing_criteria}
    assert set(ids) == {"length_constraints:number_words", "detectable_format:json_format", "punctuation:no_comma"}
    assert ids["length_constraints:number_words"] == {"id": "length_constraints:number_words", "num_words": 50,
                                                      "relation": "less than"}
    good = asyncio.run(_grade_all(criteria.testing_criteria, sample_namespace('{"status": "shipped"}')))
    bad = asyncio.run(_grade_all(criteria.testing_criteria,
                                 sample_namespace("Well, " + "it shipped and it is on its way " * 8)))
    assert all(good.values()) and not any(bad.values())

    ending = extract_criteria("End with 'Is there anything else?'", []).testing_criteria
    assert ending[0]["constraints"] == [{"id": "startend:end_checker", "end_phrase": "Is there anything else?"}]
    name = ending[0]["name"]
    assert asyncio.run(_grade_all(ending, sample_namespace("Done. Is there anything else?"))) == {name: True}
    assert asyncio.run(_grade_all(ending, sample_namespace("Is there anything else? Done."))) == {name: False}


def test_a_response_format_schema_becomes_a_schema_check():
    schema = {"type": "object", "properties": {"label": {"type": "string", "enum": ["billing", "shipping"]}},
              "required": ["label"], "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "triage", "strict": True, "schema": schema}}
    records = [{"params": {"response_format": fmt}, "output": {"content": '{"label": "billing"}'}}] * 3
    criteria = extract_criteria("Classify the ticket.", records).testing_criteria
    [check] = [c for c in criteria if c["type"] == "python"]
    verdicts = [asyncio.run(_grade_all([check], sample_namespace(text)))[check["name"]]
                for text in ('{"label": "billing"}', '{"label": "refund"}', '{"label": "billing", "x": 1}', "billing")]
    assert verdicts == [True, False, False, False]
    # a Responses API text.format is the same check; json_object alone is the JSON-format constraint
    responses = [{"params": {"text": {"format": {"type": "json_schema", "name": "t", "schema": schema}}}}]
    assert [c["type"] for c in extract_criteria("", responses).testing_criteria] == ["python"]
    loose = extract_criteria("", [{"params": {"response_format": {"type": "json_object"}}}]).testing_criteria
    assert loose[0]["constraints"] == [{"id": "detectable_format:json_format"}]


def test_required_tool_calls_become_tool_checks():
    call = {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": "{\"id\": 7}"}}
    named = [{"params": {"tool_choice": {"type": "function", "function": {"name": "get_order"}}}}] * 2
    [check] = extract_criteria("", named).testing_criteria
    assert check == {"type": "string_check", "name": "calls get_order", "operation": "eq", "reference": "get_order",
                     "input": "{{ sample.output_tools[0].function.name }}"}
    other = dict(call, function={"name": "refund", "arguments": "{}"})
    assert asyncio.run(_grade_all([check], sample_namespace("", tool_calls=[call]))) == {"calls get_order": True}
    assert asyncio.run(_grade_all([check], sample_namespace("", tool_calls=[other]))) == {"calls get_order": False}
    assert asyncio.run(_grade_all([check], sample_namespace("I looked it up."))) == {"calls get_order": False}
    # "required": the tool every good answer called first; answers marked bad do not count
    required = [{"params": {"tool_choice": "required"}, "output": {"tool_calls": [call]}, "feedback": 1},
                {"params": {"tool_choice": "required"}, "output": {"tool_calls": [other]}, "feedback": -1}]
    assert extract_criteria("", required).testing_criteria[0]["reference"] == "get_order"
    mixed = required + [{"params": {"tool_choice": "required"}, "output": {"tool_calls": [other]}, "feedback": 1}]
    assert extract_criteria("", mixed).testing_criteria == []


def test_constraints_in_the_variable_part_of_a_prompt_are_checked_per_item(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    qs = _questions(4)
    limits = [20 + 10 * (i % 4) for i in range(len(qs))]  # the template masks the number: 20, 30, 40, 50
    exchanges = [_exchange(q, "Sure.", system="Summarize the ticket. Do not use commas. Answer in under {order} words.",
                           order=n) for (_, q), n in zip(qs, limits)]
    template = "Summarize the ticket. Do not use commas. Answer in under <*> words."
    cluster, _ = _cluster(store, exchanges, template=template)
    report = build(store, cluster, tmp_path / "out")
    spec = load_eval(tmp_path / "out" / "eval.yaml")
    assert [c["name"] for c in report.criteria] == ["Do not use any commas.",
                                                    "follows the constraints of its own system prompt"]
    own = spec.testing_criteria[1]
    for row in spec.rows:
        limit = int(row.item["messages"][0]["content"].split("under ")[1].split()[0])
        assert row.item["constraints"] == [{"id": "length_constraints:number_words", "num_words": limit,
                                            "relation": "less than"}]
        under = asyncio.run(grade(own, sample_namespace("word " * (limit - 1)), row.item))
        over = asyncio.run(grade(own, sample_namespace("word " * limit), row.item))
        assert (under.passed, over.passed) == (True, False)
    # a masked part that every record states alike is a criterion of the eval, not of each item
    records = [{"id": f"r{i}", "messages": [{"role": "system", "content": f"Order {i}. End with 'Bye now.'"}]}
               for i in range(3)]
    alike = extract_criteria("Order <*>. End with <*>", records)
    assert [c["constraints"] for c in alike.testing_criteria] == [[{"id": "startend:end_checker",
                                                                     "end_phrase": "Bye now."}]]
    assert alike.item_constraints == {}


def test_an_instruction_under_a_condition_is_not_checked_on_every_item():
    text = ("Suggest hotels with prices. Reply in JSON when asked for an itinerary. "
            "If the user writes in German, respond in German. Do not use commas.")
    criteria = extract_criteria(text, [], judge="openai/gpt-4.1")
    assert [c["constraints"][0]["id"] for c in criteria.testing_criteria if c["type"] == "constraints"] == \
        ["punctuation:no_comma"]
    assert "Reply in JSON when asked for an itinerary." in criteria.uncovered
    assert "If the user writes in German, respond in German." in criteria.uncovered
    # the same instruction stated without a condition elsewhere is checked
    both = extract_criteria("Always respond in JSON. When asked for an itinerary, respond in JSON.", [])
    assert [c["constraints"][0]["id"] for c in both.testing_criteria] == ["detectable_format:json_format"]


def test_no_judge_no_rubric_and_a_judge_gets_one_for_what_no_detector_covered():
    text = "Answer in under 50 words. Be warm and mention the order status when it helps."
    plain = extract_criteria(text, [])
    assert [c["type"] for c in plain.testing_criteria] == ["constraints"]
    assert plain.uncovered == ["Be warm and mention the order status when it helps."]
    assert "no judge" in plain.notes[0] and "no score_model rubric" in plain.notes[0]
    judged = extract_criteria(text, [], judge="openai/gpt-4.1")
    rubric = judged.testing_criteria[-1]
    assert rubric["type"] == "score_model" and rubric["model"] == "openai/gpt-4.1"
    assert "Be warm and mention the order status" in rubric["input"][0]["content"]
    assert "under 50 words" not in rubric["input"][0]["content"] and not judged.notes
    parse_criteria(judged.testing_criteria)  # loads as a grader gradeloop runs


# -- split and leakage ---------------------------------------------------------------------------

def test_the_split_is_stratified_by_topic_deterministic_and_tests_small_topics():
    topics = {f"{t}{i}": t for t in ("a", "b", "c") for i in range(40)}
    topics.update({"rare1": "rare", "pair1": "pair", "pair2": "pair"})
    where = split_by_topic(topics, parse_split("70/15/15"), seed=1)
    for t in ("a", "b", "c"):
        counts = {s: sum(1 for k, v in where.items() if topics[k] == t and v == s) for s in ("train", "valid", "test")}
        assert counts == {"train": 28, "valid": 6, "test": 6}
    assert where["rare1"] == "test" and sorted(where[k] for k in ("pair1", "pair2")) == ["test", "train"]
    assert split_by_topic(topics, parse_split("70/15/15"), seed=1) == where
    assert split_by_topic(topics, parse_split("70/15/15"), seed=2) != where
    assert parse_split("8/1/1") == pytest.approx((0.8, 0.1, 0.1))
    for bad in ("70/30", "70/30/0", "a/b/c", "-1/50/51"):
        with pytest.raises(InputError, match="--split"):
            parse_split(bad)


def test_a_test_item_with_a_near_duplicate_in_train_moves_to_train(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    qs = _questions(30)
    # each request asked twice, the second time with a typo: a near duplicate, not an exact one
    pairs = [(t, q) for t, q in qs] + [(t, q.replace("?", "??", 1) + " pls") for t, q in qs]
    exchanges = [_exchange(q, "Sure. Is there anything else?", order=i) for i, (_, q) in enumerate(pairs)]
    cluster, topics = _cluster(store, exchanges, topics=[t for t, _ in pairs])
    assert jaccard(shingles(pairs[0][1]), shingles(pairs[len(qs)][1])) >= 0.8
    report = build(store, cluster, tmp_path / "out", topic_of=lambda records: topics)
    assert report.leakage_moved["test"] > 0
    rows = {s: [json.loads(line)["item"] for line in (tmp_path / "out" / f"{s}.jsonl").open()]
            for s in ("train", "valid", "test")}
    train = [shingles(user_text(i["messages"])) for i in rows["train"]]
    for item in rows["test"] + rows["valid"]:
        mine = shingles(user_text(item["messages"]))
        assert max(jaccard(mine, t) for t in train) < 0.8
    assert sum(report.counts.values()) == len(pairs)


# -- build -------------------------------------------------------------------------------------

def test_build_writes_the_eval_and_split_rows_with_provenance(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    cluster, topics = _traffic(store)
    report = build(store, cluster, tmp_path / "out", seed=3, topic_of=lambda records: topics)
    out = tmp_path / "out"
    spec = load_eval(out / "eval.yaml")
    assert spec.data_source.source.path == "test.jsonl"
    assert spec.raw["data_source"]["input_messages"] == {"type": "item_reference", "item_reference": "item.messages"}
    assert spec.raw["data_source"]["sampling_params"] == {"temperature": 0}  # seed differs per record: not common
    ids = [c["constraints"][0]["id"] for c in spec.raw["testing_criteria"] if c["type"] == "constraints"]
    assert ids == ["length_constraints:number_words", "punctuation:no_comma", "startend:end_checker"]
    assert report.counts == {"train": 42, "valid": 9, "test": 9}
    assert report.by_topic == {t: {"train": 14, "valid": 3, "test": 3} for t in ("shipping", "refunds", "account")}
    item = spec.rows[0].item
    assert item["messages"][-1]["role"] == "user" and item["messages"][0]["role"] == "system"
    prov = item["provenance"]
    record = store.harvest_record(prov["record_id"])
    assert prov == {"record_id": record["id"], "record_ids": [record["id"]], "source": "import:test",
                    "cluster": cluster, "topic": topics[record["id"]], "created_at": record["created_at"]}
    # answers marked good are references; only some test items have one, so they get their own eval
    refs = [r.item for r in spec.rows if "reference_answer" in r.item]
    assert 0 < len(refs) < len(spec.rows)
    for ref in refs:
        assert ref["reference_answer"] == store.harvest_record(ref["provenance"]["record_id"])["output"]["content"]
    with_refs = load_eval(out / "eval.references.yaml")
    assert len(with_refs.rows) == len(refs)
    similarity = with_refs.raw["testing_criteria"][-1]
    assert (similarity["type"], similarity["evaluation_metric"], similarity["reference"]) == \
        ("text_similarity", "cosine", "{{ item.reference_answer }}")
    assert any("no judge" in n for n in report.notes)
    # the same seed builds the same files; another seed another split
    again = build(store, cluster, tmp_path / "again", seed=3, topic_of=lambda records: topics)
    assert (tmp_path / "again" / "test.jsonl").read_bytes() == (out / "test.jsonl").read_bytes()
    assert again.dataset_id == report.dataset_id
    other = build(store, cluster, tmp_path / "other", seed=4, topic_of=lambda records: topics)
    assert other.dataset_id != report.dataset_id


def test_topics_come_from_the_topic_finder_by_default(tmp_path, monkeypatch):
    import gradeloop.harvest._topics

    store = Store(tmp_path / "db.sqlite")
    cluster, truth = _traffic(store, n_per_topic=10)
    by_topic = {t: [rid for rid, tt in truth.items() if tt == t] for t in ("shipping", "refunds", "account")}
    def topic(n: int, label: list[str], ids: list[str], name: str | None = None) -> Topic:
        return Topic(id=n, label=label, size=len(ids), occurrences=len(ids), examples=[], errors=0,
                     negative_feedback=0, record_ids=ids, name=name)

    found = [topic(0, ["ship", "tracking", "arrive", "late"], by_topic["shipping"]),
             topic(1, ["refund"], by_topic["refunds"], name="Refunds and returns"),
             topic(-1, ["other"], by_topic["account"][:-1])]
    calls = []

    def fake_topics(store_arg, cluster_id, failing=False, namer=None):
        calls.append(cluster_id)
        return found

    monkeypatch.setattr(gradeloop.harvest._topics, "topics", fake_topics)
    report = build(store, cluster, tmp_path / "out")
    assert calls == [cluster]
    assert {t: sum(c.values()) for t, c in report.by_topic.items()} == \
        {"ship tracking arrive": 10, "Refunds and returns": 10, "other": 10}  # the unassigned one is "other" too


def test_near_duplicates_folded_into_a_record_are_named_in_its_provenance(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    exchanges = [_exchange("Where is my kettle? Thanks.", "On its way. Is there anything else?"),
                 _exchange("Where is my kettle?? Thanks", "On its way. Is there anything else?")]
    cluster, _ = _cluster(store, exchanges)
    kept, folded = (r["id"] for r in store.harvest_records())
    store.harvest_mark_near_dups([(folded, kept)])
    build(store, cluster, tmp_path / "out", split=(0.5, 0, 0.5))
    [row] = [json.loads(line) for line in (tmp_path / "out" / "test.jsonl").open()]
    assert row["item"]["provenance"]["record_ids"] == [kept, folded]


def test_a_judge_adds_the_rubric_to_the_built_eval_and_a_cluster_without_template_reads_its_system_prompt(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    qs = _questions(3)
    exchanges = [_exchange(q, "Fine. Is there anything else?", order=i) for i, (_, q) in enumerate(qs)]
    cluster, _ = _cluster(store, exchanges, template="")
    report = build(store, cluster, tmp_path / "out", judge="openai/gpt-4.1-mini")
    spec = load_eval(tmp_path / "out" / "eval.yaml")
    assert [c.type for c in spec.testing_criteria] == ["constraints"] * 3 + ["score_model"]
    assert spec.raw["testing_criteria"][-1]["model"] == "openai/gpt-4.1-mini"
    assert [c["kind"] for c in report.criteria] == ["constraint"] * 3 + ["rubric"] and not report.notes


def test_bad_build_requests_name_the_problem(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    cluster, _ = _traffic(store, n_per_topic=2)
    with pytest.raises(InputError, match="no cluster 99"):
        build(store, 99, tmp_path / "x")
    with pytest.raises(InputError, match="6 record"):
        build(store, cluster, tmp_path / "x", min_records=10)
    with pytest.raises(InputError, match="--format"):
        build(store, cluster, tmp_path / "x", fmt="dpo")


def test_sft_and_rft_files_validate_as_tune_create_takes_them(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    qs = _questions(10)
    exchanges = [_exchange(q, "Sure. Is there anything else?" if i % 5 else None, order=i)
                 for i, (_, q) in enumerate(qs)]
    cluster, topics = _cluster(store, exchanges, topics=[t for t, _ in qs], feedback={1: -1.0, 2: 1.0})
    sft = build(store, cluster, tmp_path / "sft", fmt="sft", topic_of=lambda records: topics)
    rows = load_training_file(tmp_path / "sft" / "train.jsonl", "supervised")
    load_training_file(tmp_path / "sft" / "valid.jsonl", "supervised")
    assert all(r["messages"][-1]["role"] == "assistant" and r["messages"][-1]["content"] for r in rows)
    answered = {q for i, (_, q) in enumerate(qs) if i % 5 and i != 1}  # no empty answer, none marked bad
    assert {r["messages"][1]["content"] for r in rows} <= answered
    assert any("without a usable answer" in n for n in sft.notes)

    build(store, cluster, tmp_path / "rft", fmt="rft", topic_of=lambda records: topics)
    grader = yaml.safe_load((tmp_path / "rft" / "grader.yaml").read_text())
    assert grader["type"] == "multi" and len(grader["graders"]) == 3
    rft_rows = load_training_file(tmp_path / "rft" / "train.jsonl", "reinforcement", grader=grader)
    assert all(r["messages"][-1]["role"] == "user" and "provenance" in r for r in rft_rows)
    result = run_cli("tune", "create", "--model", "local/smollm2", "--method", "supervised", "--training-file",
                     str(tmp_path / "sft" / "train.jsonl"), "--dry-run", "--json",
                     env={"GRADELOOP_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == len(rows)
    build(store, cluster, tmp_path / "rft", fmt="eval", topic_of=lambda records: topics)
    assert not (tmp_path / "rft" / "grader.yaml").exists()  # nothing stale from an earlier build


# -- dataset versions and runs -------------------------------------------------------------------

_RULES = [{"match": "refund|money|charged|return", "response": "Refund is on its way. Is there anything else?"},
          {"response": "Well, " + "this answer keeps going and going, " * 10}]


def test_the_dataset_version_is_stored_and_runs_name_it(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    cluster, topics = _traffic(store)
    report = build(store, cluster, tmp_path / "out", topic_of=lambda records: topics)
    dataset = store.get_dataset(report.dataset_id)
    assert dataset["content_hash"] == report.content_hash and dataset["provenance"]["cluster"] == cluster
    spec = load_eval(tmp_path / "out" / "eval.yaml")
    assert spec.metadata["gradeloop_dataset"] == report.dataset_id
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(_RULES))
    [run_id] = run_eval(tmp_path / "out" / "eval.yaml", [f"scripted/{rules}"], store=store)
    run = run_object(store, run_id)
    assert run["metadata"] == {"gradeloop_dataset": report.dataset_id}
    assert run["gradeloop"]["dataset"] == report.dataset_id
    # the scripted refund answers follow every instruction, the rambling ones none
    refunds = sum(1 for r in spec.rows if r.item["provenance"]["topic"] == "refunds")
    assert run["result_counts"]["passed"] == refunds and run["result_counts"]["failed"] == len(spec.rows) - refunds


def test_eval_run_on_a_built_eval_with_schema_and_tool_checks_against_a_server(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    schema = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}
    tools = [{"type": "function", "function": {"name": "get_order", "parameters": {"type": "object"}}}]
    params = {"response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": schema}},
              "tools": tools, "tool_choice": {"type": "function", "function": {"name": "get_order"}}}
    qs = _questions(4)
    exchanges = [_exchange(q, '{"label": "x"}', system="Classify the request.", order=i, **params)
                 for i, (_, q) in enumerate(qs)]
    cluster, topics = _cluster(store, exchanges, topics=[t for t, _ in qs], template="Classify the request.")
    build(store, cluster, tmp_path / "out", topic_of=lambda records: topics)
    spec = load_eval(tmp_path / "out" / "eval.yaml")
    assert [c.type for c in spec.testing_criteria] == ["python", "string_check"]
    assert spec.raw["data_source"]["sampling_params"]["tools"] == tools

    def reply(body: dict) -> dict:
        assert body["tools"] == tools and body["response_format"]["type"] == "json_schema"
        good = "refund" in body["messages"][-1]["content"] or "money" in body["messages"][-1]["content"]
        call = {"id": "c", "type": "function",
                "function": {"name": "get_order" if good else "other", "arguments": "{}"}}
        return {"role": "assistant", "content": '{"label": "refund"}' if good else "no", "tool_calls": [call]}

    with FakeOpenAI(responder=reply) as server:
        [run_id] = run_eval(spec, ["openai/fake"], store=store, options=RunOptions(base_url=server.url))
    run = run_object(store, run_id)
    good = sum(1 for r in spec.rows if re.search("refund|money", user_text(r.item["messages"])))
    assert run["result_counts"]["passed"] == good and run["result_counts"]["total"] == len(spec.rows)


def test_harvest_build_and_eval_run_from_the_cli(tmp_path):
    home = tmp_path / "home"
    store = Store(home / "gradeloop.db")
    cluster, _ = _traffic(store)
    env = {"GRADELOOP_HOME": str(home)}
    out = tmp_path / "evals"
    result = run_cli("harvest", "build", "--cluster", str(cluster), "--out", str(out), "--split", "70/15/15",
                     "--seed", "1", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["counts"]["test"] > 0 and report["dataset_id"].startswith("ds_")
    text = run_cli("harvest", "build", "--cluster", str(cluster), "--out", str(out), "--seed", "1", env=env).stdout
    assert f"dataset {report['dataset_id']}" in text and "no score_model rubric" in text
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(_RULES))
    result = run_cli("eval", "run", str(out / "eval.yaml"), "-m", f"scripted/{rules}", "--json", "--no-progress",
                     env=env)
    assert result.returncode == 0, result.stderr
    [run] = json.loads(result.stdout)["data"]
    assert run["gradeloop"]["dataset"] == report["dataset_id"] and run["result_counts"]["passed"] > 0
    bad = run_cli("harvest", "build", "--cluster", "42", "--out", str(out), env=env)
    assert bad.returncode == 2 and "no cluster 42" in bad.stderr


@pytest.mark.slow
def test_the_reference_criterion_passes_a_rewording_not_another_answer():
    reference = ("Your parcel left our depot today and should arrive within two days. "
                 "Is there anything else I can help with?")
    rewordings = ["The parcel left the depot today and will arrive in about two days. "
                  "Is there anything else I can help with?",
                  "It shipped from our warehouse this morning; expect delivery in two days. "
                  "Is there anything else I can help with?"]
    others = ["We have issued your refund to the original card and it takes five days. "
              "Is there anything else I can help with?",
              "You can reset your password from the login page. Is there anything else I can help with?"]
    [criterion] = parse_criteria([reference_criterion()])
    verdicts = [asyncio.run(grade(criterion, sample_namespace(text), {"reference_answer": reference})).passed
                for text in rewordings + others]
    assert verdicts == [True, True, False, False]


@pytest.mark.slow
def test_a_built_eval_runs_on_the_embedded_model(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    cluster, topics = _traffic(store, n_per_topic=5, max_tokens=48)  # the cap every record sent
    build(store, cluster, tmp_path / "out", topic_of=lambda records: topics)
    sampling = load_eval(tmp_path / "out" / "eval.yaml").raw["data_source"]["sampling_params"]
    assert sampling["max_completion_tokens"] == 48
    [run_id] = run_eval(tmp_path / "out" / "eval.yaml", ["local/smollm2"], store=store,
                        options=RunOptions(limit=3))
    run = run_object(store, run_id)
    assert run["status"] == "completed" and run["result_counts"]["total"] == 3
    assert run["result_counts"]["errored"] == 0 and run["gradeloop"]["dataset"].startswith("ds_")


# -- end to end: three products --------------------------------------------------------------

_PRODUCTS_E2E = {
    "checkout": {"system": SYSTEM.format(order=7), "params": {},
                 "answer": {"response": "Your order ships today. Is there anything else?"},
                 "constraints": ["length_constraints:number_words", "punctuation:no_comma", "startend:end_checker"],
                 "types": ["constraints"] * 3},
    "triage": {"system": "You classify the support tickets of Globex. Respond only in lowercase letters.",
               "params": {"response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": {
                   "type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}}}},
               "answer": {"response": '{"label": "billing", "reason": "the card was charged twice"}'},
               "constraints": ["change_case:english_lowercase"], "types": ["constraints", "python"]},
    "travel": {"system": "You are the booking agent of Initech travel. Never use the words cheap or guarantee.",
               "params": {"tools": [{"type": "function", "name": "search_flights", "parameters": {"type": "object"}}],
                          "tool_choice": {"type": "function", "name": "search_flights"}},
               "answer": {"response": "Here are three flights for you.", "tool_calls": [
                   {"id": "c1", "type": "function", "function": {"name": "search_flights", "arguments": "{}"}}]},
               "constraints": ["keywords:forbidden_words"], "types": ["constraints", "string_check"]},
}


def test_three_products_give_three_evals_with_their_own_constraints_and_each_runs(tmp_path):
    from gradeloop.harvest import cluster_records

    store = Store(tmp_path / "db.sqlite")
    qs = _questions(17)  # 51 requests per product
    entries = []
    for name, product in _PRODUCTS_E2E.items():
        for i, (_, q) in enumerate(qs):
            request = {"model": "gpt-4.1-mini", "messages": [{"role": "system", "content": product["system"]},
                                                             {"role": "user", "content": q}], **product["params"]}
            entries.append((f"{name}:{i}", from_chat(request, None, output={"role": "assistant", "content": "ok"})))
    ingest(store, entries, source="import:test", redactor=None)
    found = cluster_records(store)
    assert len(found) == 3
    clusters = {name: next(c["id"] for c in found if c["template"].startswith(product["system"][:20]))
                for name, product in _PRODUCTS_E2E.items()}
    for name, product in _PRODUCTS_E2E.items():
        out = tmp_path / name
        built = build(store, clusters[name], out)  # topics from the topic finder
        assert len(built.by_topic) > 1
        spec = load_eval(out / "eval.yaml")
        assert sorted(c.type for c in spec.testing_criteria) == sorted(product["types"])
        # the template masks numbers ("under <NUM> words"): such a constraint comes from every record's prompt
        assert sorted(c["constraints"][0]["id"] for c in spec.raw["testing_criteria"] if c["type"] == "constraints") \
            == sorted(product["constraints"])
        assert sum(built.counts.values()) == len(qs)
        rules = tmp_path / f"{name}.yaml"
        rules.write_text(yaml.safe_dump([product["answer"]]))
        [run_id] = run_eval(spec, [f"scripted/{rules}"], store=store)
        run = run_object(store, run_id)
        assert run["result_counts"]["passed"] == len(spec.rows) == built.counts["test"]
        assert run["gradeloop"]["dataset"] == built.dataset_id
        rules.write_text(yaml.safe_dump([{"response": "Sure, WE can help with that and it is cheap."}]))
        [run_id] = run_eval(spec, [f"scripted/{rules}"], store=store)
        assert run_object(store, run_id)["result_counts"]["failed"] == len(spec.rows)
