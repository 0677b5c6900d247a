"""Near duplicates, clusters by use case and topics within a cluster, on synthetic traffic of
three products (tests/harvest_traffic.py) and on small hand-made cases."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import pytest
from harvest_traffic import PRODUCTS, three_products
from typer.testing import CliRunner

from conftest import run_cli
from gradeloop import Store, eval_from_dict, run_eval
from gradeloop.cli import app
from gradeloop.harvest import Redactor, cluster_records, from_chat, ingest, topics


def _ingest(store: Store, records: list, start: int = 0) -> list[str]:
    entries = [(f"traffic.jsonl:{start + i}", r) for i, r in enumerate(records)]
    return ingest(store, entries, source="import:test", redactor=Redactor()).record_ids


def _fail_in_a_run(store: Store, record_ids: list[str], failing: set[str]) -> None:
    """A later eval run whose items name harvested records in ``provenance.record_id``; the
    items of ``failing`` fail their criterion."""
    rows = [{"item": {"provenance": {"record_id": rid}, "expected": "no" if rid in failing else "yes"},
             "sample": {"output_text": "yes"}} for rid in record_ids]
    spec = eval_from_dict({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "string_check", "name": "same", "operation": "eq",
                              "input": "{{ sample.output_text }}", "reference": "{{ item.expected }}"}],
        "data_source": {"type": "jsonl", "source": {"type": "file_content", "content": rows}}})
    run_eval(spec, store=store)


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    home = tmp_path_factory.mktemp("harvest")
    store = Store(home / "gradeloop.db")
    records = three_products(0)
    ids = _ingest(store, records)
    truth = {rid: r.metadata["truth"] for rid, r in zip(ids, records)}
    clusters = cluster_records(store)
    cluster_of = {}
    for cluster in clusters:
        products = {truth[r["id"]]["product"] for r in store.harvest_records(cluster_id=cluster["id"])}
        cluster_of[products.pop()] = cluster["id"]
    # an eval built later from HR traffic: 6 records that neither errored nor were rated badly fail in it
    hr = [r for r in store.harvest_records(cluster_id=cluster_of.get("hr")) if r["feedback"] is None and not r["error"]]
    failed_in_run = {r["id"] for r in hr[:6]}
    _fail_in_a_run(store, [r["id"] for r in hr[:20]], failed_in_run)
    return SimpleNamespace(home=home, store=store, records=records, ids=ids, truth=truth, clusters=clusters,
                           cluster_of=cluster_of, failed_in_run=failed_in_run)


def _planted(traffic) -> dict[str, str]:
    """Record id of each planted near duplicate → the id of the request it repeats."""
    return {rid: traffic.ids[t["near_dup_of"]] for rid, t in traffic.truth.items() if t["near_dup_of"] is not None}


def test_three_products_make_three_clusters_of_the_right_sizes(traffic):
    assert len(traffic.clusters) == 3 and set(traffic.cluster_of) == set(PRODUCTS)
    planted = Counter(traffic.truth[rid]["product"] for rid in _planted(traffic))
    for cluster in traffic.clusters:
        members = traffic.store.harvest_records(cluster_id=cluster["id"], include_near_dups=True)
        (product,) = {traffic.truth[r["id"]]["product"] for r in members}
        assert cluster["occurrences"] == PRODUCTS[product]["count"] == len(members)
        assert cluster["records"] == PRODUCTS[product]["count"] - planted[product]
        assert cluster["models"] == ["gpt-4.1", "gpt-4.1-mini"]
        assert cluster["errors"] == sum(bool(r["error"]) for r in members if not r["near_dup_of"])
    shop = next(c for c in traffic.clusters if c["id"] == traffic.cluster_of["shop"])
    # the variable parts are masked: names, the (redacted) e-mail, ids, the date
    assert shop["template"].startswith("You are ShopBot, the customer support assistant of Northwind Outfitters.")
    assert "<EMAIL>" in shop["template"] and "<DATE>" in shop["template"] and "@" not in shop["template"]
    assert not any(name in shop["template"] for name in ("Ann", "Smith", "Okafor", "Nakamura"))


def test_near_duplicates_fold_into_the_request_they_repeat(traffic):
    planted = _planted(traffic)
    assert len(planted) >= 10
    folded = {r["id"]: r["near_dup_of"] for r in traffic.store.harvest_records(include_near_dups=True)
              if r["near_dup_of"]}
    assert folded == planted  # every repeat folds, into its original, and nothing else folds
    kept = {r["id"]: r["occurrences"] for r in traffic.store.harvest_records()}
    assert all(kept[original] >= 2 for original in planted.values())


def test_clustering_is_incremental_idempotent_and_keeps_cluster_ids(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    records = three_products(0)
    first_ids = _ingest(store, records[:200])
    first = {c["key"]: c["id"] for c in cluster_records(store)}
    later_ids = _ingest(store, records[200:], start=200)
    clusters = cluster_records(store)
    assert len(clusters) == 3 and {c["key"]: c["id"] for c in clusters} == first
    assert cluster_records(store) == clusters  # nothing new: nothing changes
    ids = first_ids + later_ids
    truth = {rid: r.metadata["truth"] for rid, r in zip(ids, records)}
    for cluster in clusters:
        members = store.harvest_records(cluster_id=cluster["id"], include_near_dups=True)
        assert len({truth[r["id"]]["product"] for r in members}) == 1
    folded = {r["id"]: r["near_dup_of"] for r in store.harvest_records(include_near_dups=True) if r["near_dup_of"]}
    assert folded == {rid: ids[t["near_dup_of"]] for rid, t in truth.items() if t["near_dup_of"] is not None}
    assert any(rid in later_ids and original in first_ids for rid, original in folded.items())


def _chat(system: str | None, question: str, **params) -> object:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    return from_chat({"model": "m", "messages": messages, **params}, None)


def test_inserted_variables_of_any_length_stay_in_one_cluster_and_products_stay_apart(tmp_path):
    quill = "You are Quill.\nYou write product descriptions for {shop}.\nToday is {date}. Keep it under {n} words."
    ledger = "You are Ledger.\nYou answer accounting questions for {shop}.\nToday is {date}. Cite the rule you apply."
    shops = ["Acme", "Blue Mountain Coffee Roasters", "Zed & Co", "Hällmarks", "Ōsaka Noodle Bar and Grill"]
    store = Store(tmp_path / "db.sqlite")
    records = [_chat(p.format(shop=s, date=f"2026-0{i + 1}-1{i}", n=40 + i), f"question {i} about {s}")
               for p in (quill, ledger) for i, s in enumerate(shops)]
    records += [_chat(None, "Weather in Paris?", tools=[{"type": "function", "function": {"name": "get_weather"}}]),
                _chat(None, "Weather in Rome?", tools=[{"type": "function", "function": {"name": "get_weather"}}]),
                _chat(None, "hello")]
    ingest(store, [(str(i), r) for i, r in enumerate(records)], source="test", redactor=None)
    clusters = {c["template"]: c["records"] for c in cluster_records(store)}
    assert len(clusters) == 4
    assert clusters["(no system prompt); tools: get_weather"] == 2 and clusters["(no system prompt)"] == 1
    quill_template = next(t for t in clusters if t.startswith("You are Quill."))
    assert clusters[quill_template] == 5 and "<DATE>" in quill_template and "Acme" not in quill_template
    assert clusters[next(t for t in clusters if t.startswith("You are Ledger."))] == 5


def _purity(traffic, found) -> float:
    grouped = [t for t in found if t.id >= 0]
    majority = sum(Counter(traffic.truth[r]["intent"] for r in t.record_ids).most_common(1)[0][1] for t in grouped)
    return majority / sum(t.size for t in grouped)


@pytest.mark.slow  # the real MiniLM embedder, on CPU
def test_topics_separate_the_intents_of_each_product(traffic):
    for product, cluster_id in traffic.cluster_of.items():
        cluster = next(c for c in traffic.clusters if c["id"] == cluster_id)
        found = topics(traffic.store, cluster_id)
        assert sum(t.size for t in found) == cluster["records"]
        assert sum(t.errors for t in found) == cluster["errors"]
        assert sum(t.negative_feedback for t in found) == cluster["negative_feedback"]
        other = sum(t.size for t in found if t.id < 0)
        assert other <= 0.3 * cluster["records"], (product, other)
        assert _purity(traffic, found) >= 0.9, product
        # every intent is the majority of some topic, and labels name the intent's words
        majorities = {Counter(traffic.truth[r]["intent"] for r in t.record_ids).most_common(1)[0][0]
                      for t in found if t.id >= 0}
        assert majorities == set(PRODUCTS[product]["intents"]), product
        for t in found:
            assert 1 <= len(t.examples) <= 3 and len(t.label) >= 1
    labels = " ".join(" ".join(t.label) for t in topics(traffic.store, traffic.cluster_of["travel"]))
    assert "visa" in labels and "hotel" in labels


@pytest.mark.slow
def test_failing_topics_hold_only_failing_records(traffic):
    store = traffic.store
    for product, cluster_id in traffic.cluster_of.items():
        expected = {r["id"] for r in store.harvest_records(cluster_id=cluster_id)
                    if r["error"] or (r["feedback"] or 0) < 0 or r["id"] in traffic.failed_in_run}
        found = topics(store, cluster_id, failing=True)
        assert {rid for t in found for rid in t.record_ids} == expected, product
    hr = {rid for t in topics(store, traffic.cluster_of["hr"], failing=True) for rid in t.record_ids}
    assert traffic.failed_in_run <= hr  # failed in a later eval run, though they neither errored nor were rated badly
    # in the shop, refunds are what goes wrong
    shop = topics(store, traffic.cluster_of["shop"], failing=True)
    top = max((t for t in shop if t.id >= 0), key=lambda t: t.size)
    assert Counter(traffic.truth[r]["intent"] for r in top.record_ids).most_common(1)[0][0] == "refund"


@pytest.mark.slow
def test_a_namer_model_names_the_topics_through_the_model_pool(traffic, tmp_path):
    rules = tmp_path / "namer.yaml"
    rules.write_text("- {match: 'vacation|leave|holiday', response: Vacation requests}\n"
                     "- {match: 'expense|reimburs|receipt|allowance', response: '\"Expense claims\"'}\n"
                     "- {response: Something else}\n")
    found = topics(traffic.store, traffic.cluster_of["hr"], namer=f"scripted/{rules}")
    names = {Counter(traffic.truth[r]["intent"] for r in t.record_ids).most_common(1)[0][0]: t.name
             for t in found if t.id >= 0}
    assert names == {"vacation": "Vacation requests", "expenses": "Expense claims"}
    assert all(t.name is None for t in found if t.id < 0)
    calls = traffic.store.conn.execute("SELECT COUNT(*) FROM model_calls WHERE purpose = 'grader'").fetchone()[0]
    assert calls >= len(names)


@pytest.mark.slow
def test_clusters_and_topics_through_the_cli(traffic, monkeypatch):
    monkeypatch.setenv("GRADELOOP_HOME", str(traffic.home))
    runner = CliRunner()
    table = runner.invoke(app, ["harvest", "clusters"])
    assert table.exit_code == 0, table.output
    assert "ShopBot" in table.output and "TripMate" in table.output and "HR policy" in table.output
    listing = json.loads(runner.invoke(app, ["harvest", "clusters", "--json"]).output)
    assert listing["object"] == "list" and len(listing["data"]) == 3
    shop = next(c for c in listing["data"] if c["id"] == traffic.cluster_of["shop"])
    assert shop["object"] == "harvest.cluster" and shop["occurrences"] == PRODUCTS["shop"]["count"]
    assert shop["error_rate"] == round(shop["errors"] / shop["records"], 4)
    assert shop["negative_feedback_rate"] == round(shop["negative_feedback"] / shop["with_feedback"], 4)

    cluster = str(traffic.cluster_of["travel"])
    result = runner.invoke(app, ["harvest", "topics", "--cluster", cluster, "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["object"] == "list" and {t["object"] for t in found["data"]} == {"harvest.topic"}
    travel = next(c for c in traffic.clusters if c["id"] == traffic.cluster_of["travel"])
    assert sum(len(t["record_ids"]) for t in found["data"]) == sum(t["size"] for t in found["data"]) == travel["records"]
    failing = json.loads(runner.invoke(app, ["harvest", "topics", "--cluster", cluster, "--failing", "--json"]).output)
    failing_ids = {rid for t in failing["data"] for rid in t["record_ids"]}
    assert failing_ids and all(traffic.store.harvest_record(rid)["error"]
                               or traffic.store.harvest_record(rid)["feedback"] < 0 for rid in failing_ids)
    shown = runner.invoke(app, ["harvest", "topics", "--cluster", cluster])
    assert shown.exit_code == 0 and "visa" in shown.output


def test_an_unknown_cluster_is_one_line_and_exit_2():
    result = run_cli("harvest", "topics", "--cluster", "99")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "no harvest cluster 99" in result.stderr
