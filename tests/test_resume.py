"""kill -9 in the middle of a run, then resume: nothing finished is requested again, nothing is lost."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import pytest

from conftest import ROOT, run_cli
from gradeloop import Store, output_item_objects, run_object
from gradeloop.testing import FakeOpenAI, Faults

N = 240


def write_eval(tmp_path):
    rows = "\n".join(json.dumps({"item": {"q": f"item {i}"}}) for i in range(N))
    (tmp_path / "rows.jsonl").write_text(rows + "\n")
    path = tmp_path / "eval.yaml"
    path.write_text(
        "name: resumable\n"
        "data_source_config: {type: custom, item_schema: {type: object, required: [q]}}\n"
        "testing_criteria:\n"
        "  - {type: string_check, name: echo, input: '{{ sample.output_text }}', operation: eq, reference: '{{ item.q }}'}\n"
        "data_source:\n"
        "  type: completions\n"
        "  source: {type: file, path: rows.jsonl}\n"
        "  input_messages: {type: template, template: [{role: user, content: '{{ item.q }}'}]}\n"
    )
    return path


def stored_samples(db) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT i.item FROM samples s JOIN run_items i ON i.run_id = s.run_id AND i.idx = s.idx"
                            " WHERE s.status = 'ok'").fetchall()
    return {json.loads(r[0])["q"] for r in rows}


def count_output_items(db) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT COUNT(*) FROM output_items").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_kill_9_then_resume(tmp_path):
    eval_file = write_eval(tmp_path)
    db = tmp_path / "gradeloop-home" / "gradeloop.db"
    with FakeOpenAI(latency=0.03, faults=Faults(rate=0.1, kinds=("500", "429"), retry_after=0.01)) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gradeloop", "eval", "run", str(eval_file), "--model", "openai/fake",
             "--base-url", server.url, "--concurrency", "8", "--no-progress"],
            cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while count_output_items(db) < N // 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        before = stored_samples(db)
        seen_before = len(server.requests)
        assert N // 3 <= len(before) < N, "the kill must land in the middle of the run"

        store = Store(db)
        [run] = store.list_runs()
        assert run["status"] == "in_progress"  # killed: nothing had a chance to mark it
        result = run_cli("eval", "resume", run["id"][:16], "--json", "--no-progress")
        assert result.returncode == 0, result.stderr
        after = [r.body["messages"][-1]["content"] for r in server.requests[seen_before:]]

    assert not before & set(after), "a sample stored before the kill was requested again"
    items = output_item_objects(store, run["id"])
    keys = [o["datasource_item_id"] for o in items]
    assert sorted(keys) == list(range(N))  # none missing, none twice
    final = run_object(store, run["id"])
    assert final["status"] == "completed"
    assert final["result_counts"]["passed"] + final["result_counts"]["errored"] == N
    assert json.loads(result.stdout)["data"][0]["id"] == run["id"]
    # successful requests per item: at most one before the kill was lost in flight (concurrency 8)
    served = Counter(r.body["messages"][-1]["content"] for r in server.requests if r.fault is None)
    assert sum(n - 1 for n in served.values() if n > 1) <= 8


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_marks_the_run_canceled_and_resume_finishes_it(tmp_path, sig, code):
    eval_file = write_eval(tmp_path)
    db = tmp_path / "gradeloop-home" / "gradeloop.db"
    with FakeOpenAI(latency=0.1) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gradeloop", "eval", "run", str(eval_file), "--model", "openai/fake",
             "--base-url", server.url, "--concurrency", "4", "--no-progress"],
            cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            # a shell running pytest in the background hands SIGINT down ignored; Ctrl-C is the default
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 120
        while count_output_items(db) < 20 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == code and "gradeloop eval resume" in stderr
        store = Store(db)
        [run] = store.list_runs()
        assert run["status"] == "canceled"
        result = run_cli("eval", "resume", run["id"], "--no-progress")
        assert result.returncode == 0, result.stderr
    assert run_object(store, run["id"])["result_counts"]["passed"] == N


def test_resume_grades_stored_samples_without_calling_the_model(tmp_path):
    from gradeloop.store import SampleRecord

    eval_file = write_eval(tmp_path)
    with FakeOpenAI() as server:
        from gradeloop import RunOptions, load_eval, run_eval

        spec = load_eval(eval_file)
        store = Store()
        # a run whose first two samples were stored but not graded when the process died
        run_id = store.create_run(eval_id=store.add_eval(spec.definition()), model="openai/fake", name="x",
                                  data_source=spec.data_source_dict(),
                                  config=RunOptions(base_url=server.url, epochs=1, limit=2).to_config(),
                                  rows=[(r.index, r.item, None, r.file, r.line) for r in spec.rows[:2]])
        for i in range(2):
            store.record_sample(run_id, i, 0, SampleRecord(
                status="ok", model="openai/fake", input=[], output={"role": "assistant", "content": f"item {i}"},
                choices=None, finish_reason="stop", prompt_tokens=1, completion_tokens=2, cached_tokens=0,
                latency_ms=1.0, cached=False, cache_key=None, params={}, error=None), [])
        from gradeloop import resume_run

        resume_run(run_id, store=store)
        assert server.requests == []
    assert run_object(store, run_id)["result_counts"]["passed"] == 2
    del run_eval
