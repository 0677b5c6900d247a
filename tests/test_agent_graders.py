"""Graders over agent episodes (issue 15, point 3): the trajectory reaches every grader type's
templates and python graders; tool_called, final_state and no_forbidden_tool."""

import asyncio
import copy
import json

import pytest

from gradeloop.errors import InputError
from gradeloop.graders import grade
from gradeloop.spec import Document, load_grader
from gradeloop.templating import sample_namespace


def G(data):
    return load_grader(data, Document(data=data, file="<test>"))


def episode(**changes):
    """A refund episode in the contract's shape: get_order fails once (injected), is retried,
    then refund_order succeeds and the agent answers."""
    trajectory = {
        "messages": [
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": "Refund order A1, it arrived broken."},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "A1"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "error: 500 internal server error"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_2", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "A1"}'}}]},
            {"role": "tool", "tool_call_id": "call_2", "content": '{"status": "delivered", "total": 30}'},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_3", "type": "function", "function": {
                    "name": "refund_order", "arguments": '{"order_id": "A1", "amount": 30, "reason": "item broken"}'}}]},
            {"role": "tool", "tool_call_id": "call_3", "content": '{"ok": true}'},
            {"role": "assistant", "content": "Order A1 is refunded."},
        ],
        "tool_calls": [
            {"turn": 1, "id": "call_1", "name": "get_order", "arguments": {"order_id": "A1"}, "result": None,
             "error": {"type": "server_error", "message": "500 internal server error", "injected": True}},
            {"turn": 2, "id": "call_2", "name": "get_order", "arguments": {"order_id": "A1"},
             "result": {"status": "delivered", "total": 30}, "error": None},
            {"turn": 3, "id": "call_3", "name": "refund_order",
             "arguments": {"order_id": "A1", "amount": 30, "reason": "item broken"}, "result": {"ok": True},
             "error": None},
        ],
        "final_state": {"orders": {"A1": {"status": "refunded", "total": 30}}, "refunds": ["A1"], "notes": 0},
        "stop_reason": "answer", "turns": 4, "faults": 1, "asked": False,
    }
    trajectory.update(changes)
    return trajectory


def sample(trajectory=None, text="Order A1 is refunded.", tool_calls=None):
    return sample_namespace(text, tool_calls=tool_calls, trajectory=episode() if trajectory is None else trajectory)


ITEM = {"order_id": "A1", "expected_state": {"orders": {"A1": {"status": "refunded", "total": 30.0}},
                                             "refunds": ["A1"], "notes": 0},
        "forbidden": "transfer_to_human"}


def run(grader, s=None, item=None):
    return asyncio.run(grade(grader, s if s is not None else sample(), ITEM if item is None else item))


# -- the trajectory in every grader type ------------------------------------------------

def test_string_check_and_text_similarity_templates_read_the_trajectory():
    g = G({"type": "string_check", "name": "s", "operation": "eq",
           "input": "{{ sample.trajectory.tool_calls[2].name }}:{{ sample.trajectory.tool_calls[2].arguments.order_id }}"
                    ":{{ sample.trajectory.stop_reason }}:{{ sample.trajectory.final_state.orders.A1.status }}",
           "reference": "refund_order:{{ item.order_id }}:answer:refunded"})
    assert run(g).passed is True
    assert run(g, sample(episode(stop_reason="max_turns"))).passed is False
    sim = G({"type": "text_similarity", "name": "t", "evaluation_metric": "fuzzy_match", "pass_threshold": 0.99,
             "input": "{{ sample.trajectory.messages[1].content }}", "reference": "Refund order A1, it arrived broken."})
    assert run(sim).passed is True


def test_needles_and_multi_read_the_trajectory():
    g = G({"type": "multi", "name": "m", "calculate_output": "min(tools, state)", "graders": {
        "tools": {"type": "needles", "input": "{{ sample.trajectory.tool_calls }}",
                  "references": ["refund_order", "item broken"]},
        "state": {"type": "final_state"}}})
    result = run(g)
    assert result.score == 1 and result.passed is True
    broken = episode(final_state={"orders": {}, "refunds": [], "notes": 0})
    assert run(g, sample(broken)).sub_rewards == {"tools": 1.0, "state": pytest.approx(1 / 3)}


def test_python_grader_gets_the_trajectory_through_the_sandbox():
    source = (
        "def grade(sample, item):\n"
        "    t = sample['trajectory']\n"
        "    retried = [c for c in t['tool_calls'] if c['name'] == 'get_order']\n"
        "    injected = sum(1 for c in t['tool_calls'] if (c['error'] or {}).get('injected'))\n"
        "    return 1.0 if len(retried) == 2 and injected == t['faults'] == 1 and t['final_state']['refunds'] == ['A1'] else 0.25\n"
    )
    g = G({"type": "python", "name": "py", "source": source, "timeout_seconds": 30})
    assert run(g).score == 1.0
    assert run(g, sample(episode(faults=0))).score == 0.25


def test_score_model_prompt_renders_the_trajectory(fake_server):
    from gradeloop.runner import grading_session

    fake_server.responder = lambda body: json.dumps({"result": 1, "steps": []})
    g = G({"type": "score_model", "name": "judge", "model": "judge",
           "input": [{"role": "user", "content": "Calls: {{ sample.trajectory.tool_calls[0].error.type }} then "
                                                 "{{ sample.trajectory.tool_calls[2].arguments }}"}]})

    async def go():
        async with grading_session(base_url=fake_server.url) as ctx:
            return await grade(g, sample(), ITEM, ctx)
    assert asyncio.run(go()).score == 1
    [body] = fake_server.chat_bodies()
    assert body["messages"][-1]["content"] == \
        'Calls: server_error then {"order_id": "A1", "amount": 30, "reason": "item broken"}'


def test_a_sample_without_trajectory_is_invalid_variable_not_a_crash():
    g = G({"type": "final_state", "name": "end"})
    result = asyncio.run(grade(g, sample_namespace("hi"), ITEM))
    assert result.score == 0 and result.errors == {"invalid_variable_error": True} and result.passed is False


# -- tool_called --------------------------------------------------------------------------

@pytest.mark.parametrize("spec,passed", [
    ({"tool": "refund_order"}, True),
    ({"tool": "refund_order", "arguments": {"order_id": "{{ item.order_id }}"}}, True),
    ({"tool": "refund_order", "arguments": {"order_id": "A2"}}, False),
    ({"tool": "refund_order", "arguments": {"amount": 30.0}}, True),          # numbers by value
    ({"tool": "refund_order", "arguments": {"amount": "30"}}, False),         # a string is not a number
    ({"tool": "refund_order", "arguments": {"order_id": "A1", "extra": 1}}, False),
    ({"tool": "refund_order", "argument_patterns": {"reason": "broken|damaged"}}, True),
    ({"tool": "refund_order", "argument_patterns": {"reason": "^broken"}}, False),
    ({"tool": "refund_order", "argument_patterns": {"missing": "."}}, False),
    ({"tool": "refund_order", "argument_patterns": {"amount": "^30$"}}, True),  # non-strings as JSON text
    ({"tool": "get_order", "min_count": 2}, True),
    ({"tool": "get_order", "min_count": 3}, False),
    ({"tool": "get_order", "max_count": 1}, False),
    ({"tool": "get_order", "min_count": 0, "max_count": 1, "succeeded_only": True}, True),
    ({"tool": "get_order", "min_count": 2, "succeeded_only": True}, False),
    ({"tool": "transfer_to_human", "min_count": 0, "max_count": 0}, True),    # "never called"
    ({"tool": "{{ item.forbidden }}"}, False),
])
def test_tool_called(spec, passed):
    result = run(G({"type": "tool_called", "name": "t", **spec}))
    assert result.passed is passed and result.score == float(passed)


def test_tool_called_templated_object_keeps_types_and_nests():
    item = {**ITEM, "want": {"order_id": "A1", "amount": 30}}
    g = G({"type": "tool_called", "name": "t", "tool": "refund_order", "arguments": "{{ item.want }}"})
    assert run(g, item=item).passed is True
    nested = episode(tool_calls=[{"turn": 1, "id": "c", "name": "book", "arguments": {
        "slot": {"day": "mon", "hour": 9, "room": "b"}, "who": ["ann", "bo"]}, "result": "ok", "error": None}])
    g = G({"type": "tool_called", "name": "t", "tool": "book",
           "arguments": {"slot": {"day": "mon", "hour": "{{ item.hour }}"}, "who": ["ann", "bo"]}})
    assert run(g, sample(nested), {"hour": 9}).passed is True
    assert run(g, sample(nested), {"hour": "9"}).passed is False  # the item's string stays a string
    bad = G({"type": "tool_called", "name": "t", "tool": "book", "arguments": "{{ item.hour }}"})
    assert run(bad, sample(nested), {"hour": 9}).errors == {"invalid_variable_error": True}


def test_tool_called_reads_output_tools_without_a_trajectory_and_raw_arguments():
    calls = [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    s = sample_namespace("", tool_calls=calls)
    g = G({"type": "tool_called", "name": "t", "tool": "get_weather", "arguments": {"city": "Paris"}})
    assert asyncio.run(grade(g, s, {})).passed is True
    raw = episode(tool_calls=[{"turn": 1, "id": "c", "name": "get_order", "arguments": "{order_id: A1",
                               "result": None, "error": {"type": "bad_arguments", "message": "x", "injected": False}}])
    assert run(G({"type": "tool_called", "name": "t", "tool": "get_order", "arguments": {"order_id": "A1"}}),
               sample(raw)).passed is False
    assert run(G({"type": "tool_called", "name": "t", "tool": "get_order"}), sample(raw)).passed is True


def test_tool_called_refuses_bad_patterns_and_counts_at_load():
    with pytest.raises(InputError) as exc:
        G({"type": "tool_called", "name": "t", "tool": "x", "argument_patterns": {"a": "("}})
    assert "argument_patterns.a" in str(exc.value) and "regular expression" in str(exc.value)
    with pytest.raises(InputError, match="max_count 1 is below min_count 2"):
        G({"type": "tool_called", "name": "t", "tool": "x", "min_count": 2, "max_count": 1})


# -- final_state --------------------------------------------------------------------------

def test_final_state_equal_and_share_of_keys():
    g = G({"type": "final_state", "name": "end"})
    result = run(g)
    assert result.score == 1 and result.passed is True and result.details["keys"] == 3
    partly = episode(final_state={"orders": {"A1": {"status": "delivered", "total": 30}}, "refunds": ["A1"],
                                  "notes": 0, "extra": True})
    result = run(g, sample(partly))
    assert result.score == pytest.approx(2 / 4) and result.passed is False  # orders differ; extra is not expected
    assert result.details["mismatched"] == ["orders", "extra"]
    assert result.details["first_mismatch"]["expected"] == {"A1": {"status": "refunded", "total": 30.0}}


def test_final_state_keys_and_dotted_paths_and_json_equality():
    state = episode(final_state={"orders": {"A1": {"status": "refunded", "total": 31}}, "refunds": ["A1"],
                                 "notes": False})
    keyed = G({"type": "final_state", "name": "end", "keys": ["orders.A1.status", "refunds", "notes"]})
    result = run(keyed, sample(state))
    assert result.score == pytest.approx(2 / 3) and result.details["mismatched"] == ["notes"]  # False is not 0
    only = G({"type": "final_state", "name": "end", "keys": ["orders.A1.status", "refunds"]})
    assert run(only, sample(state)).passed is True
    missing = G({"type": "final_state", "name": "end", "keys": ["orders.A2"]})
    assert run(missing, sample(state)).passed is True  # absent in both
    inline = G({"type": "final_state", "name": "end", "expected": {"refunds": ["A1"]}, "keys": ["refunds"]})
    assert run(inline).passed is True
    with pytest.raises(InputError, match="keys"):
        G({"type": "final_state", "name": "end", "keys": []})


def test_final_state_of_an_empty_state_and_bad_expected():
    assert run(G({"type": "final_state", "name": "e", "expected": {}}), sample(episode(final_state={}))).passed is True
    bad = run(G({"type": "final_state", "name": "e", "expected": "{{ item.order_id }}"}))
    assert bad.errors == {"invalid_variable_error": True} and "object" in bad.details["error"]


# -- no_forbidden_tool --------------------------------------------------------------------

def test_no_forbidden_tool():
    g = G({"type": "no_forbidden_tool", "name": "n", "tools": ["transfer_to_human", "{{ item.other }}"]})
    item = {**ITEM, "other": "delete_account"}
    assert run(g, item=item).passed is True
    bad = copy.deepcopy(episode())
    bad["tool_calls"].append({"turn": 4, "id": "c9", "name": "delete_account", "arguments": {}, "result": None,
                              "error": {"type": "tool_error", "message": "denied", "injected": False}})
    result = run(g, sample(bad), item)
    assert result.passed is False and result.details["forbidden_calls"] == ["delete_account"]  # errored still counts
    listed = G({"type": "no_forbidden_tool", "name": "n", "tools": "{{ item.banned }}"})
    assert run(listed, item={"banned": ["refund_order"]}).passed is False
    assert run(listed, item={"banned": [3]}).errors == {"invalid_variable_error": True}
    assert run(listed, item={"banned": []}).passed is True  # an item on which nothing is forbidden
    assert run(listed, sample(bad), item={"banned": []}).passed is True
    assert run(listed, item={"banned": {"a": 1}}).errors == {"invalid_variable_error": True}
    with pytest.raises(InputError):
        G({"type": "no_forbidden_tool", "name": "n", "tools": []})


# -- through an eval file, the stored sample and resume ----------------------------------

def test_stored_trajectory_is_graded_on_resume(tmp_path, fake_server):
    """A sample stored with its trajectory but not yet graded (the process died) is graded on
    resume with the trajectory in its namespace; templates naming sample.trajectory load."""
    from gradeloop import RunOptions, load_eval, resume_run, run_object
    from gradeloop.store import SampleRecord, Store

    rows = [{"item": ITEM}, {"item": {**ITEM, "order_id": "B2"}}]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "eval.yaml").write_text(
        "name: agent\ndata_source_config: {type: custom, item_schema: {type: object}}\n"
        "data_source:\n  type: completions\n  source: {type: file, path: data.jsonl}\n"
        "  input_messages:\n    type: template\n    template: [{role: user, content: 'Refund {{ item.order_id }}'}]\n"
        "testing_criteria:\n"
        "  - {type: final_state, name: end state}\n"
        "  - {type: tool_called, name: refunded, tool: refund_order, arguments: {order_id: '{{ item.order_id }}'}}\n"
        "  - {type: string_check, name: answered, operation: eq, input: '{{ sample.trajectory.stop_reason }}',"
        " reference: answer}\n")
    spec = load_eval(tmp_path / "eval.yaml")
    store = Store()
    run_id = store.create_run(eval_id=store.add_eval(spec.definition()), model="openai/fake", name="x",
                              data_source=spec.data_source_dict(),
                              config=RunOptions(base_url=fake_server.url, epochs=1).to_config(),
                              rows=[(r.index, r.item, None, r.file, r.line) for r in spec.rows])
    for i in range(2):
        store.record_sample(run_id, i, 0, SampleRecord(
            status="ok", model="openai/fake", input=[], output={"role": "assistant", "content": "Order A1 is refunded."},
            choices=None, finish_reason="stop", prompt_tokens=1, completion_tokens=2, cached_tokens=0,
            latency_ms=1.0, cached=False, cache_key=None, params={}, error=None, trajectory=episode()), [])
    resume_run(run_id, store=store)
    assert fake_server.requests == []
    counts = run_object(store, run_id)["result_counts"]
    assert (counts["passed"], counts["failed"], counts["errored"]) == (1, 1, 0)  # B2 was not refunded
    failed = [o for o in store.output_items(run_id) if o["status"] == "fail"]
    assert [s["passed"] for s in failed[0]["scores"]] == [True, False, True]


def test_grade_file_rows_may_carry_a_trajectory(tmp_path):
    from conftest import run_cli

    grader = tmp_path / "g.json"
    grader.write_text(json.dumps({"type": "tool_called", "name": "t", "tool": "refund_order"}))
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"item": {}, "sample": {"output_text": "done", "trajectory": episode()}}) + "\n"
                    + json.dumps({"item": {}, "sample": {"output_text": "done", "trajectory": episode(tool_calls=[])}})
                    + "\n")
    result = run_cli("grade", "file", str(grader), str(rows), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["passed"] == 1
