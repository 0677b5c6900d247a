"""kill -9 in the middle of agent episodes, then resume: finished episodes are not run again, a
cut-off episode starts over at its beginning (its stored turns come back from the cache), and
every episode ends with exactly its own turns and state."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import yaml

from conftest import ROOT, run_cli
from gradeloop import Store, output_item_objects
from gradeloop.testing import FakeOpenAI, scripted_turns, tool_call

N = 40
TOOLS_PY = '''
def add_note(state, text):
    state.setdefault("notes", []).append(text)
    return {"notes": len(state["notes"])}
'''


def script(i: int) -> list:
    note = {"content": None, "tool_calls": [tool_call("add_note", {"text": f"n{i}"}, "c")]}
    return [note, note, note, note, f"done {i}"]


def write_eval(tmp_path):
    (tmp_path / "tools.py").write_text(TOOLS_PY)
    definition = {
        "name": "agent-resume",
        "data_source_config": {"type": "custom"},
        "testing_criteria": [{"type": "string_check", "name": "done", "operation": "eq",
                              "input": "{{ sample.output_text }}", "reference": "done {{ item.i }}"}],
        "agent": {"max_turns": 6, "tools": {"python": "tools.py"}},
        "data_source": {
            "type": "completions",
            "source": {"type": "file_content", "content": [{"item": {"i": i}} for i in range(N)]},
            "input_messages": {"type": "template", "template": [{"role": "user", "content": "item {{ item.i }}"}]},
            "sampling_params": {"tools": [{"type": "function", "function": {
                "name": "add_note", "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}}]},
        },
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(definition))
    return path


def progress(db) -> tuple[set[int], set[int]]:
    """(items with a stored episode, items with stored turns but no episode yet)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            done = {r[0] for r in conn.execute("SELECT idx FROM samples")}
            started = {r[0] for r in conn.execute("SELECT DISTINCT idx FROM turns")}
    except sqlite3.OperationalError:
        return set(), set()
    return done, started - done


def key(body: dict) -> tuple[str, int]:
    """A request as (its conversation, its turn)."""
    messages = body["messages"]
    return messages[0]["content"], sum(1 for m in messages if m["role"] == "assistant")


def test_kill_9_mid_episode_then_resume(tmp_path):
    eval_file = write_eval(tmp_path)
    db = tmp_path / "gradeloop-home" / "gradeloop.db"
    scripts = {f"item {i}": script(i) for i in range(N)}
    with FakeOpenAI(latency=0.05, responder=scripted_turns(scripts)) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gradeloop", "eval", "run", str(eval_file), "--model", "openai/fake",
             "--base-url", server.url, "--concurrency", "4", "--no-progress"],
            cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            done, cut = progress(db)
            if len(done) >= N // 4 and cut:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        done, cut = progress(db)
        assert N // 4 <= len(done) < N and cut, "the kill must land in the middle of an episode"
        seen_before = len(server.requests)
        store = Store(db)
        [run] = store.list_runs()
        result = run_cli("eval", "resume", run["id"], "--no-progress")
        assert result.returncode == 0, result.stderr
        after = [key(r.body) for r in server.requests[seen_before:]]
        every = Counter(key(r.body) for r in server.requests)

    assert not {c for c, _ in after} & {f"item {i}" for i in done}, "a finished episode was run again"
    # a cut-off episode's stored turns came back from the cache: only calls in flight at the kill repeat
    assert sum(n - 1 for n in every.values() if n > 1) <= 4
    items = output_item_objects(store, run["id"])
    assert sorted(o["datasource_item_id"] for o in items) == list(range(N))
    assert all(o["status"] == "pass" for o in items)
    for i in range(N):
        traj = json.loads(store.conn.execute("SELECT trajectory FROM samples WHERE run_id = ? AND idx = ?",
                                             (run["id"], i)).fetchone()[0])
        # the episode restarted from its initial state: four notes, not the cut-off run's plus these
        assert traj["final_state"] == {"notes": [f"n{i}"] * 4} and traj["turns"] == 5
        assert [t["turn"] for t in store.turns(run["id"], i, 0)] == [1, 2, 3, 4, 5]
