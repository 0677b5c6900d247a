"""Agent episodes on a local model: the tiny random llama drives a whole episode through the
engine's tool calls (grammar-constrained to each tool's schema), the python tools change the
episode's state in the sandbox, and each tool result goes back into the next prompt."""

import json

import pytest
import yaml

from gradeloop import Store, run_eval

from conftest import build_tiny_model

COUNTER = {"type": "object", "properties": {"by": {"type": "integer", "minimum": 1, "maximum": 3}},
           "required": ["by"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "add", "description": "add to the counter", "parameters": COUNTER}}]
TOOLS_PY = '''
def add(state, by):
    state["total"] = state.get("total", 0) + by
    state.setdefault("calls", []).append(by)
    return {"total": state["total"]}
'''


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("tiny-agent"))
    config = json.loads((path / "config.json").read_text())
    config["max_position_embeddings"] = 4096  # three turns of tool calls and results need more than 512
    (path / "config.json").write_text(json.dumps(config))
    return path


def write_eval(tmp_path, rows=2, max_turns=3):
    (tmp_path / "tools.py").write_text(TOOLS_PY)
    definition = {
        "name": "counter",
        "data_source_config": {"type": "custom"},
        "testing_criteria": [{"type": "final_state", "name": "counted", "expected": "{{ item.expected }}"}],
        "agent": {"max_turns": max_turns, "state": "{{ item.state }}", "tools": {"python": "tools.py"}},
        "data_source": {"type": "completions",
                        "source": {"type": "file_content",
                                   "content": [{"item": {"q": f"count {i}", "state": {"total": 0},
                                                         "expected": {"total": 0}}} for i in range(rows)]},
                        "input_messages": {"type": "template",
                                           "template": [{"role": "user", "content": "{{ item.q }}"}]},
                        "sampling_params": {"temperature": 1.0, "max_completion_tokens": 80, "tools": TOOLS,
                                            "tool_choice": "required", "parallel_tool_calls": False}},
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


def test_an_episode_runs_on_a_local_model_with_tools(tmp_path, model_dir):
    store = Store()
    [run_id] = run_eval(str(write_eval(tmp_path)), [f"hf/{model_dir}"], store=store)
    episodes = [json.loads(row[0]) for row in store.conn.execute(
        "SELECT trajectory FROM samples WHERE run_id = ? ORDER BY idx", (run_id,))]
    assert len(episodes) == 2
    for episode in episodes:
        # tool_choice required: every turn is one call that parses and fits the schema, until max_turns
        assert episode["stop_reason"] == "max_turns" and episode["turns"] == 3
        calls = episode["tool_calls"]
        assert [c["name"] for c in calls] == ["add"] * 3 and all(c["error"] is None for c in calls)
        steps = [c["arguments"]["by"] for c in calls]
        assert all(isinstance(s, int) and 1 <= s <= 3 for s in steps)
        # the sandboxed tool changed the episode's state, call by call, and each result reached the model
        assert episode["final_state"] == {"total": sum(steps), "calls": steps}
        assert [c["result"]["total"] for c in calls] == [sum(steps[:k + 1]) for k in range(3)]
        tool_messages = [m for m in episode["messages"] if m["role"] == "tool"]
        assert [json.loads(m["content"])["total"] for m in tool_messages] == [sum(steps[:k + 1]) for k in range(3)]
    # the final state never equals {"total": 0} after a call: the end-state grader fails every episode
    counts = store.conn.execute("SELECT status, COUNT(*) FROM output_items WHERE run_id = ? GROUP BY status",
                                (run_id,)).fetchall()
    assert dict(counts) == {"fail": 2}
    turns = store.conn.execute("SELECT COUNT(*) FROM turns WHERE run_id = ?", (run_id,)).fetchone()[0]
    assert turns >= 6  # every model turn was stored as it happened
