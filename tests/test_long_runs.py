"""Running long items: the refusal past a local model's window, --truncate, long inputs stored once,
and a run of each long-context suite on the embedded model."""

import json
import sqlite3

import pytest

from conftest import run_cli
from gradeloop.errors import InputError
from gradeloop.models._truncate import truncate_messages
from gradeloop.suites import grounding, needles
from gradeloop.suites._tokens import get_tokenizer


def _needles_eval(tmp_path, tokens="1k", task="single"):
    out = tmp_path / "niah"
    built = run_cli("suite", "needles", "build", "--tokens", tokens, "--task", task, "--placement", "both",
                    "--n", "2", "--out", str(out))
    assert built.returncode == 0, built.stderr
    return out


def test_local_model_refuses_items_past_its_window_before_the_run(tmp_path, tiny_model_dir):
    out = _needles_eval(tmp_path)
    ran = run_cli("eval", "run", str(out / "eval.yaml"), "-m", f"hf/{tiny_model_dir}", "--no-progress")
    assert ran.returncode == 2
    [line] = ran.stderr.strip().splitlines()
    assert f"{out / 'rows.jsonl'}:1" in line and "context window is 512 tokens" in line and "--truncate" in line
    assert json.loads(run_cli("eval", "list", "--json").stdout)["data"] == []  # nothing ran, nothing stored


def test_truncate_middle_fits_the_window_and_keeps_both_ends(tmp_path, tiny_model_dir):
    out = _needles_eval(tmp_path)
    ran = run_cli("eval", "run", str(out / "eval.yaml"), "-m", f"hf/{tiny_model_dir}", "--truncate", "middle",
                  "--epochs", "2", "--no-progress", "--json")
    assert ran.returncode == 0, ran.stderr
    [run] = json.loads(ran.stdout)["data"]
    assert run["result_counts"]["errored"] == 0 and run["result_counts"]["total"] == 4
    listing = json.loads(run_cli("eval", "items", run["id"], "--json").stdout)["data"]
    for item in listing:
        original = item["datasource_item"]["messages"][0]["content"]
        sent = item["sample"]["input"][0]["content"]
        assert len(sent) < len(original) / 2
        assert sent[:60] == original[:60] and sent[-60:] == original[-60:]  # the instructions at both ends
        assert item["sample"]["usage"]["prompt_tokens"] + item["sample"]["usage"]["completion_tokens"] <= 512
    bad = run_cli("eval", "run", str(out / "eval.yaml"), "-m", f"hf/{tiny_model_dir}", "--truncate", "top")
    assert bad.returncode == 2 and "--truncate" in bad.stderr


def test_truncation_is_token_accurate_in_every_direction():
    tok = get_tokenizer()
    body = " ".join(f"word{i}" for i in range(3000))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "START " + body + " END"}]

    def count(ms):
        return sum(tok.count(m["content"]) for m in ms)

    for how in ("middle", "left", "right"):
        cut, n = truncate_messages(messages, 1000, how, count, tok.encode, tok.decode)
        assert n == count(cut) and 990 <= n <= 1000, how
        assert cut[0] == messages[0]  # the system message is never cut
        text = cut[1]["content"]
        assert text.startswith("START") == (how != "left") and text.endswith("END") == (how != "right")
    same, n = truncate_messages(messages, 10**6, "middle", count, tok.encode, tok.decode)
    assert same is messages and n == count(messages)
    with pytest.raises(InputError, match="does not fit"):
        truncate_messages([{"role": "system", "content": body}, {"role": "user", "content": "x"}], 10, "middle",
                          count, tok.encode, tok.decode)


def _db_bytes(home, eval_path, rules, monkeypatch, share: bool) -> int:
    from gradeloop.runner import RunOptions, run_eval
    from gradeloop.store import Store, _db

    monkeypatch.setattr(_db, "INPUT_SHARE_CHARS", 2048 if share else 10**12)
    path = home / f"store-{share}.db"
    store = Store(path)
    [run_id] = run_eval(str(eval_path), [f"scripted/{rules}"], store=store, options=RunOptions(epochs=3))
    items = store.output_items(run_id)
    assert len(items) == 3 and items[0]["sample"]["input"] == items[0]["item"]["messages"]  # read back whole
    store.conn.execute("VACUUM")
    store.conn.close()
    return path.stat().st_size


def test_a_long_input_is_stored_once_not_once_per_epoch(tmp_path, monkeypatch):
    out = tmp_path / "long"
    needles.build([128 * 1024], ["single"], out)
    prompt = json.loads((out / "rows.jsonl").read_text())["item"]["messages"]
    size = len(json.dumps(prompt, separators=(",", ":")).encode())
    (tmp_path / "rules.json").write_text(json.dumps([{"response": "ok"}]))
    unshared = _db_bytes(tmp_path, out / "eval.yaml", tmp_path / "rules.json", monkeypatch, share=False)
    shared = _db_bytes(tmp_path, out / "eval.yaml", tmp_path / "rules.json", monkeypatch, share=True)
    print(f"128k-token item x 3 epochs: {unshared} bytes -> {shared} bytes (prompt {size} bytes)")
    assert unshared - shared >= 4 * size  # three inputs and three call requests become one stored copy
    with sqlite3.connect(tmp_path / "store-True.db") as raw:
        assert raw.execute("SELECT COUNT(*) FROM inputs").fetchone()[0] == 1


@pytest.mark.slow
def test_each_long_suite_runs_on_the_embedded_model_at_4k(tmp_path):
    niah = tmp_path / "niah"
    needles.build([4096], ["single", "vartrack"], niah, tokenizer="local/smollm2", placements=["both"])
    ground = tmp_path / "ground"
    grounding.build(4, 0, ground, layouts=["xml", "pipe"])
    runs = {}
    for eval_dir, by in ((niah, "length_bin"), (ground, "layout")):
        ran = run_cli("eval", "run", str(eval_dir / "eval.yaml"), "-m", "local/smollm2", "--limit", "2",
                      "--by", by, "--json", "--no-progress")
        assert ran.returncode == 0, ran.stderr
        [run] = json.loads(ran.stdout)["data"]
        assert run["result_counts"]["total"] == 2 and run["result_counts"]["errored"] == 0
        assert run["gradeloop"]["breakdown"][by][0]["prompt_tokens"] > 0
        runs[by] = run
    effective = runs["length_bin"]["gradeloop"]["effective_length"]
    assert [b["length"] for b in effective["bins"]] == [4096]
    assert "rates" in runs["layout"]["gradeloop"]["criterion_rates"][0]


def test_the_viewers_call_log_shows_a_shared_input_whole(tmp_path):
    from gradeloop.runner import run_eval
    from gradeloop.store import Store

    out = tmp_path / "long"
    needles.build([4096], ["single"], out)
    (tmp_path / "rules.json").write_text(json.dumps([{"response": "ok"}]))
    store = Store(tmp_path / "db.sqlite")
    [run_id] = run_eval(str(out / "eval.yaml"), [f"scripted/{tmp_path / 'rules.json'}"], store=store)
    raw = store.conn.execute("SELECT request FROM model_calls WHERE run_id = ?", (run_id,)).fetchone()[0]
    assert '"$input"' in raw  # stored once, referenced from the call
    [call] = Store.open_readonly(tmp_path / "db.sqlite").model_calls(run_id, 0, 0)
    assert call["request"]["messages"] == store.output_items(run_id)[0]["item"]["messages"]


# ------------------------------------------------------- effective length from mean scores

def _scored_run(metric: str | None) -> str:
    """A hand-filled run of two criteria over items at three lengths; the scores per output item
    are below (an errored item's scores must not count)."""
    from gradeloop.store import ScoreRecord, Store

    store = Store()
    criteria = [{"type": "mrcr", "name": "a"}, {"type": "mrcr", "name": "b"}]
    eval_id = store.add_eval({"name": f"scored {metric}", "testing_criteria": criteria,
                              "metadata": {"gradeloop_metric": metric} if metric else {}})
    units = [(4096, "pass", (1.0, 1.0)), (4096, "fail", (1.0, 0.5)), (4096, "error", (0.0, None)),
             (8192, "fail", (0.8, 0.6)), (8192, "fail", (0.9, 0.7)), (16384, "fail", (0.5, 0.5))]
    rows = [(i, {"length_bin": length, "q": i}, None, None, None) for i, (length, _, _) in enumerate(units)]
    run_id = store.create_run(eval_id=eval_id, model="scripted/x", name=None, data_source=None,
                              config={"epochs": 1}, rows=rows)
    for i, (_, status, scores) in enumerate(units):
        store.record_grades(run_id, i, 0, [
            ScoreRecord(c, name, "mrcr", "h", score, None if score is None else score == 1.0, {})
            for c, (name, score) in enumerate(zip("ab", scores))], status)
    store.close()
    return run_id


def test_effective_length_uses_the_mean_score_when_the_eval_reports_one():
    from gradeloop.report import breakdown, effective_length_summary
    from gradeloop.store import Store

    run_id = _scored_run("mean_score")
    store = Store()
    rows = {r["value"]: r for r in breakdown(store, run_id, "length_bin")}
    # per output item the mean over criteria, then over output items; the errored one left out
    assert rows[4096]["mean_score"] == pytest.approx(0.875) and rows[4096]["pass_rate"] == 0.5
    assert rows[8192]["mean_score"] == pytest.approx(0.75) and rows[16384]["mean_score"] == pytest.approx(0.5)
    summary = effective_length_summary(store, run_id)
    assert summary["metric"] == "mean_score" and summary["effective_length"] == 8192
    assert summary["threshold"] == pytest.approx(0.85 * 0.875)
    assert [(b["length"], b["mean_score"], b["holds"]) for b in summary["bins"]] == [
        (4096, pytest.approx(0.875), True), (8192, pytest.approx(0.75), True), (16384, pytest.approx(0.5), False)]
    by_pass = effective_length_summary(store, run_id, metric="pass_rate")  # a perfect answer only: harsh
    assert by_pass["effective_length"] == 4096 and "mean_score" not in by_pass["bins"][0]
    shown = run_cli("eval", "show", run_id, "--by", "length_bin")
    assert shown.returncode == 0, shown.stderr
    assert "effective length: 8192 tokens" in shown.stdout and "mean score by length_bin" in shown.stdout
    assert "mean score" in shown.stdout.split("By length_bin")[1] and "0.875" in shown.stdout
    as_json = json.loads(run_cli("eval", "show", run_id, "--json").stdout)["gradeloop"]["effective_length"]
    assert as_json["metric"] == "mean_score" and as_json["bins"][1]["mean_score"] == pytest.approx(0.75)


def test_a_pass_rate_eval_keeps_its_pass_rate_summary():
    from gradeloop.report import effective_length_summary
    from gradeloop.store import Store

    run_id = _scored_run(None)
    summary = effective_length_summary(Store(), run_id)
    assert summary["metric"] == "pass_rate" and summary["effective_length"] == 4096
    assert [b["pass_rate"] for b in summary["bins"]] == [0.5, 0.0, 0.0]
    shown = run_cli("eval", "show", run_id, "--by", "length_bin")
    assert "pass rate by length_bin" in shown.stdout and "mean score" not in shown.stdout


# --------------------------------------------------------------- long items stored once

def test_a_long_item_is_stored_once_not_once_per_model_and_reads_back_whole(tmp_path):
    from gradeloop.report import breakdown, export_run
    from gradeloop.runner import RunOptions, run_eval
    from gradeloop.store import Store
    from gradeloop.suites import mrcr

    out = tmp_path / "mrcr"
    mrcr.build([32768], [2], 1, 0, out)
    item = json.loads((out / "rows.jsonl").read_text())["item"]
    def size(value):
        return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    long_values = [item["messages"]] + [item["answer"]] * (len(item["answer"]) >= 2048)
    (tmp_path / "rules.json").write_text(json.dumps([{"response": "no"}]))
    store = Store(tmp_path / "db.sqlite")
    run_ids = run_eval(str(out / "eval.yaml"), [f"scripted/{tmp_path / 'rules.json'}", "scripted/echo"],
                       store=store, options=RunOptions(epochs=3))
    with sqlite3.connect(tmp_path / "db.sqlite") as raw:
        rows = raw.execute("SELECT SUM(length(item)), COUNT(*) FROM run_items").fetchone()
        shared = raw.execute("SELECT SUM(length(body)), COUNT(*) FROM inputs").fetchone()
        inputs = raw.execute("SELECT COUNT(*) FROM samples WHERE input LIKE '{\"$input\"%'").fetchone()[0]
    # two models' rows keep the small fields only; one copy of the conversation (the samples' six
    # inputs are the same messages) and of the long answer
    assert rows[1] == 2 and rows[0] < 2048 and inputs == 6
    assert shared == (sum(size(v) for v in long_values), len(long_values))
    for run_id in run_ids:
        assert store.run_items(run_id)[0]["item"] == item
        assert [o["item"] for o in store.output_items(run_id)] == [item] * 3
        assert [(r["value"], r["total"]) for r in breakdown(store, run_id, "n_needles")] == [(2, 3)]
        needle = item["messages"][item["desired_msg_index"]]["content"][:60]
        assert [o["item"] for o in store.output_items_page(run_id, search=needle.upper())] == [item] * 3
        assert len(store.output_items_page(run_id, field="length_bin", value=item["length_bin"])) == 3
    export_run(store, run_ids[0], str(tmp_path / "out.jsonl"))
    exported = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["datasource_item"] for r in exported] == [item] * 3


def test_shared_item_values_keep_sql_queries_working(tmp_path):
    from gradeloop.store import ScoreRecord, Store

    store = Store(tmp_path / "db.sqlite")
    eval_id = store.add_eval({"name": "x", "testing_criteria": []})
    ids = [f"hr_{i:032x}" for i in range(80)]  # a long list of ids stays inline (json_each reads it)
    long_item = {"text": "tapir " * 1000, "provenance": {"record_ids": ids}, "q": 1}
    literal = {"text": "tapir " * 1000, "ref": {"$input": "not a reference"}}
    run_id = store.create_run(eval_id=eval_id, model="scripted/x", name=None, data_source=None, config={},
                              rows=[(0, long_item, None, None, None), (1, literal, None, None, None)])
    store.record_grades(run_id, 0, 0, [ScoreRecord(0, "a", "t", "h", 0.0, False, {})], "fail")
    raw = store.conn.execute("SELECT item, shared FROM run_items WHERE run_id = ? ORDER BY idx", (run_id,)).fetchall()
    assert raw[0][1] == 1 and "tapir" not in raw[0][0] and ids[-1] in raw[0][0]
    assert raw[1][1] == 0 and raw[1][0].count("tapir") == 1000  # a literal "$input" is never read as one
    assert store.harvest_failed_in_runs() == set(ids)
    assert [r["item"] for r in store.run_items(run_id)] == [long_item, literal]
    assert store.field_values(run_id, "q") == [None, 1]
