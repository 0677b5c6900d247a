"""pass^k beside pass@k (issue 15, point 5) and the episode metrics of points 4 and 6 (success with
and without injected faults, recovery and gave-up rates, clarification precision and recall):
the pure functions on hand-built episodes, then `eval show` and `eval items --trajectory` on a
store filled by hand, checked against tables computed by hand."""

import json

import pytest

from gradeloop.agents._metrics import (after_failure, agent_metrics, clarification, consistency, fault_success, grit,
                                       k_values)

# -- pass^k -------------------------------------------------------------------------------

# four epochs; item 4 errored once, so it is left out (not graded in every epoch)
OUTCOMES = {0: [1, 1, 1, 1], 1: [1, 1, 0, 0], 2: [1, 0, 1, 1], 3: [0, 0, 0, 0], 4: [1, 1, 0]}
VARIANT = {0: "a", 1: "a", 2: "b", 3: "b", 4: "b"}
# by hand, per item (c of n = 4 passed): pass^k = C(c, k) / C(4, k), pass@k = 1 - C(4 - c, k) / C(4, k)
#   item 0 (c=4): pass^k 1, 1, 1, 1          pass@k 1, 1, 1, 1
#   item 1 (c=2): pass^k 1/2, 1/6, 0, 0      pass@k 1/2, 5/6, 1, 1
#   item 2 (c=3): pass^k 3/4, 1/2, 1/4, 0    pass@k 3/4, 1, 1, 1
#   item 3 (c=0): pass^k 0, 0, 0, 0          pass@k 0, 0, 0, 0
HAT = {"1": 9 / 16, "2": 5 / 12, "3": 5 / 16, "4": 1 / 4}
AT = {"1": 9 / 16, "2": 17 / 24, "3": 3 / 4, "4": 3 / 4}
HAT_BY = {"a": {"1": 3 / 4, "2": 7 / 12, "3": 1 / 2, "4": 1 / 2}, "b": {"1": 3 / 8, "2": 1 / 4, "3": 1 / 8, "4": 0}}


def test_pass_hat_k_against_a_hand_computed_table():
    table = consistency(OUTCOMES, 4, {"variant": VARIANT})
    assert table["k"] == [1, 2, 3, 4] and table["items"] == 4 and table["skipped_items"] == 1
    assert table["overall"]["pass_hat_k"] == pytest.approx(HAT)
    assert table["overall"]["pass_at_k"] == pytest.approx(AT)
    rows = {r["key"]: r for r in table["per_item"]}
    assert rows[1]["pass_hat_k"] == pytest.approx({"1": 1 / 2, "2": 1 / 6, "3": 0, "4": 0})
    assert rows[2]["pass_at_k"] == pytest.approx({"1": 3 / 4, "2": 1, "3": 1, "4": 1})
    assert 4 not in rows
    groups = {g["value"]: g for g in table["by"]["variant"]}
    assert {v: g["items"] for v, g in groups.items()} == {"a": 2, "b": 2}
    for value, expected in HAT_BY.items():
        assert groups[value]["pass_hat_k"] == pytest.approx(expected)


def test_pass_hat_k_needs_two_epochs_and_picks_ks():
    assert consistency({0: [1]}, 1) is None and consistency({0: [1]}, 3) is None  # no complete item
    assert k_values(1) == [] and k_values(8) == list(range(1, 9)) and k_values(32) == [1, 2, 5, 10, 20, 32]


# -- episodes -----------------------------------------------------------------------------

def call(turn, name="get_order", error=None, injected=False):
    return {"turn": turn, "id": f"c{turn}{name}", "name": name, "arguments": {"order_id": "A1"},
            "result": None if error else {"ok": True},
            "error": {"type": error, "message": f"{error} happened", "injected": injected} if error else None}


def traj(calls, stop="answer", turns=None, asked=False, faults=None):
    return {"messages": [], "tool_calls": calls, "final_state": {}, "stop_reason": stop,
            "turns": turns or (max([c["turn"] for c in calls], default=0) + 1),
            "faults": sum(bool(c["error"] and c["error"]["injected"]) for c in calls) if faults is None else faults,
            "asked": asked}


def ep(index, passed, trajectory, epoch=0, item=None):
    return {"index": index, "epoch": epoch, "item": item or {}, "passed": passed, "trajectory": trajectory}


def test_after_failure_cases():
    assert after_failure(traj([call(1)]), False) is None
    assert after_failure(traj([call(1, error="server_error", injected=True), call(2)]), False) == "recovered"
    parallel = traj([call(1, error="timeout", injected=True), call(1, "refund")])  # same turn: not "afterwards"
    assert after_failure(parallel, False) == "gave_up"
    assert after_failure(parallel, True) == "answered"
    assert after_failure(traj([call(1), call(3, error="rate_limit", injected=True)], stop="max_turns", turns=3),
                         False) == "cut_off"
    assert after_failure(traj([call(1, error="server_error", injected=True)], stop="final_tool", turns=1),
                         False) == "cut_off"
    mixed = traj([call(1, error="server_error", injected=True), call(2, error="bad_arguments")])
    assert after_failure(mixed, False) == "gave_up"                       # the last failure ended it
    assert after_failure(mixed, False, injected_only=True) == "recovered"  # after the injected one it tried again
    assert after_failure(traj([call(1, error="tool_error")]), False, injected_only=True) is None


def test_grit_rates_leave_cut_off_episodes_out():
    episodes = [
        ep(0, True, traj([call(1, error="server_error", injected=True), call(2)])),           # recovered
        ep(1, False, traj([call(1, error="server_error", injected=True), call(2)])),          # recovered
        ep(2, False, traj([call(1, error="timeout", injected=True)])),                        # gave up
        ep(3, True, traj([call(1, error="timeout", injected=True)])),                         # answered
        ep(4, False, traj([call(2, error="malformed", injected=True)], stop="max_turns", turns=2)),  # cut off
        ep(5, False, traj([call(1)])),                                                        # no failure
        ep(6, None, traj([call(1, error="timeout", injected=True)])),                         # errored: left out
    ]
    g = grit(episodes)
    assert (g["episodes_with_failure"], g["recovered"], g["gave_up"], g["answered"], g["cut_off"]) == (5, 2, 1, 1, 1)
    assert g["recovery_rate"] == pytest.approx(2 / 4) and g["gave_up_rate"] == pytest.approx(1 / 4)
    assert grit([ep(0, True, traj([]))])["recovery_rate"] is None


def test_success_with_and_without_faults_on_the_same_items():
    faulted = traj([call(1, error="server_error", injected=True), call(2)])
    clean = traj([call(1)])
    episodes = [ep(0, True, faulted, 0), ep(0, True, clean, 1), ep(0, False, clean, 2),
                ep(1, False, faulted, 0), ep(1, False, faulted, 1),
                ep(2, True, clean, 0), ep(2, True, faulted, 1),
                ep(3, None, faulted, 0)]
    f = fault_success(episodes)
    assert f["with_faults"] == {"episodes": 4, "passed": 2, "rate": 0.5}
    assert f["without_faults"] == {"episodes": 3, "passed": 2, "rate": pytest.approx(2 / 3)}
    # items 0 and 2 have both kinds: with faults (1 + 1) / 2, without (1/2 + 1) / 2
    assert f["paired"] == {"items": 2, "with_faults": 1.0, "without_faults": 0.75, "difference": 0.25}
    only = fault_success([ep(0, True, clean)])
    assert only["paired"]["items"] == 0 and only["with_faults"]["rate"] is None


def test_clarification_precision_and_recall():
    asked, not_asked = traj([], asked=True), traj([call(1)])
    episodes = [ep(0, True, asked, item={"ambiguous": True}), ep(0, True, asked, 1, {"ambiguous": True}),
                ep(1, False, not_asked, item={"ambiguous": "true"}), ep(1, False, not_asked, 1, {"ambiguous": 1}),
                ep(2, False, asked, item={"ambiguous": False}),
                ep(3, True, not_asked, item={}), ep(4, True, not_asked, item={"ambiguous": "no"}),
                ep(5, None, asked, item={"ambiguous": False})]  # errored: left out
    c = clarification(episodes)
    assert (c["true_positive"], c["false_positive"], c["false_negative"], c["true_negative"]) == (2, 1, 2, 2)
    assert c["precision"] == pytest.approx(2 / 3) and c["recall"] == pytest.approx(2 / 4)
    assert clarification([ep(0, True, asked, item={"q": 1})]) is None
    nested = clarification([ep(0, True, asked, item={"meta": {"vague": True}})], "meta.vague")
    assert nested["precision"] == 1 and nested["recall"] == 1
    assert agent_metrics([ep(0, True, None)]) is None


# -- through the store: eval show, eval items --trajectory ------------------------------

AMBIGUOUS = {1: True, 2: False, 3: True}


def stored_trajectory(index, epoch, passed):
    """Epoch 0: an injected 500, retried; epoch 2: an injected timeout, then an answer; epochs 1
    and 3 clean, except item 3's epoch 3, cut off at max_turns by a bad-arguments call. Ambiguous
    items ask in epochs 0 and 1, item 0 asks in epoch 3."""
    answer = "Done." if passed else "Sorry, I cannot do that."
    messages = [{"role": "user", "content": f"Refund order {index}"}]
    calls = []
    if epoch == 0:
        calls = [call(1, error="server_error", injected=True), call(2)]
    elif epoch == 2:
        calls = [call(1, error="timeout", injected=True)]
    elif epoch == 3 and index == 3:
        calls = [call(1), call(2, error="bad_arguments")]
    for c in calls:
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}]})
        messages.append({"role": "tool", "tool_call_id": c["id"],
                         "content": "error" if c["error"] else json.dumps(c["result"])})
    cut = epoch == 3 and index == 3
    if not cut:
        messages.append({"role": "assistant", "content": answer})
    asked = (AMBIGUOUS.get(index) is True and epoch in (0, 1)) or (index == 0 and epoch == 3)
    t = traj(calls, stop="max_turns" if cut else "answer", turns=2 if cut else None, asked=asked)
    t.update(messages=messages, final_state={"refunded": [index] if passed else []})
    return t


@pytest.fixture
def agent_run():
    from gradeloop.store import SampleRecord, ScoreRecord, Store

    store = Store()
    definition = {"name": "agent", "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
                  "testing_criteria": [{"type": "final_state", "name": "end state"}]}
    items = [{"order": i, "variant": VARIANT[i], **({"ambiguous": AMBIGUOUS[i]} if i in AMBIGUOUS else {})}
             for i in range(5)]
    run_id = store.create_run(eval_id=store.add_eval(definition), model="openai/agent", name="agent", data_source=None,
                              config={"epochs": 4}, rows=[(i, item, None, None, None) for i, item in enumerate(items)])
    for index, outcomes in OUTCOMES.items():
        epochs = [0, 2, 3] if index == 4 else [0, 1, 2, 3]  # item 4's epoch 1 errored
        for epoch, passed in zip(epochs, outcomes):
            t = stored_trajectory(index, epoch, passed)
            store.record_sample(run_id, index, epoch, SampleRecord(
                status="ok", model="openai/agent", input=t["messages"][:1], output=t["messages"][-1], choices=None,
                finish_reason="stop", prompt_tokens=10, completion_tokens=5, cached_tokens=0, latency_ms=3.0,
                cached=False, cache_key=None, params={}, error=None, trajectory=t), [])
            store.record_grades(run_id, index, epoch, [ScoreRecord(0, "end state", "final_state", "h", float(passed),
                                                                   bool(passed), {})], "pass" if passed else "fail")
    store.set_run_status(run_id, "completed")
    store.record_sample(run_id, 4, 1, SampleRecord(
        status="error", model="openai/agent", input=None, output=None, choices=None, finish_reason=None,
        prompt_tokens=None, completion_tokens=None, cached_tokens=None, latency_ms=None, cached=False, cache_key=None,
        params={}, error={"code": "server_error", "message": "the model endpoint failed"}), [])
    store.record_grades(run_id, 4, 1, [], "error")
    store.close()
    return run_id


def cli(*args):
    from typer.testing import CliRunner

    from gradeloop.cli import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_eval_show_json_has_pass_hat_k_and_the_episode_metrics(agent_run):
    obj = json.loads(cli("eval", "show", agent_run, "--by", "variant", "--json"))["gradeloop"]
    assert obj["pass_hat_k"] == pytest.approx({"1": HAT["1"], "2": HAT["2"], "4": HAT["4"]})
    table = obj["consistency"]
    assert table["overall"]["pass_hat_k"] == pytest.approx(HAT) and table["overall"]["pass_at_k"] == pytest.approx(AT)
    assert {r["index"] for r in table["per_item"]} == {0, 1, 2, 3} and table["skipped_items"] == 1
    assert {g["value"]: g["pass_hat_k"]["4"] for g in table["by"]["variant"]} == pytest.approx({"a": 0.5, "b": 0})
    agent = obj["agent"]
    assert agent["episodes"]["episodes"] == 19 and agent["episodes"]["stop_reasons"] == {"answer": 18, "max_turns": 1}
    # faulted: epochs 0 and 2 (7 of 10 passed); clean: epochs 1 and 3 (4 of 9); per item, on all 5
    # items: with faults (1 + 1/2 + 1 + 0 + 1) / 5, without (1 + 1/2 + 1/2 + 0 + 0) / 5
    assert agent["faults"]["with_faults"] == {"episodes": 10, "passed": 7, "rate": pytest.approx(0.7)}
    assert agent["faults"]["without_faults"]["rate"] == pytest.approx(4 / 9)
    assert agent["faults"]["paired"] == pytest.approx({"items": 5, "with_faults": 0.7, "without_faults": 0.4,
                                                       "difference": 0.3})
    # epoch 0: 5 recovered; epoch 2: 3 passed without a retry, 2 gave up; item 3 epoch 3 cut off
    g = agent["grit"]
    assert (g["recovered"], g["answered"], g["gave_up"], g["cut_off"]) == (5, 3, 2, 1)
    assert g["recovery_rate"] == pytest.approx(0.5) and g["gave_up_rate"] == pytest.approx(0.2)
    assert agent["grit_injected"]["cut_off"] == 0 and agent["grit_injected"]["episodes_with_failure"] == 10
    c = agent["clarification"]
    assert (c["true_positive"], c["false_positive"], c["false_negative"]) == (4, 1, 4)
    assert c["precision"] == pytest.approx(0.8) and c["recall"] == pytest.approx(0.5)
    by = {r["value"]: r for r in agent["by"]["variant"]}
    assert by["a"]["episodes"]["episodes"] == 8 and by["b"]["clarification"]["recall"] == pytest.approx(0.5)


def test_eval_show_prints_pass_hat_k_and_the_episode_metrics(agent_run):
    shown = cli("eval", "show", agent_run, "--by", "variant")
    assert "pass@1 56.2%, pass@2 70.8%, pass@4 75.0%; pass^2 41.7%, pass^4 25.0%" in shown
    assert "pass^k by variant (k = 4, 4 items)" in shown
    assert "success with injected faults 70.0% (10 episodes), without 44.4% (9); on the 5 items with both: " \
           "70.0% vs 40.0% (+30.0 points)" in shown
    assert "after a failed tool call (10 episodes, 1 more cut off): recovered 50.0%, gave up 20.0%" in shown
    assert "clarification (item field ambiguous): precision 80.0% (5 episodes asked), recall 50.0%" in shown
    assert "Episodes by variant" in shown
    other = cli("eval", "show", agent_run, "--ambiguous-field", "variant")  # "a"/"b" are not flags: all clear
    assert "precision 0.0% (5 episodes asked), recall – (0 on ambiguous items)" in other


def test_eval_items_trajectory_prints_every_turn_call_and_result(agent_run):
    shown = cli("eval", "items", agent_run, "--status", "fail", "--trajectory")
    blocks = shown.split("item ")[1:]
    assert len(blocks) == 8  # the failed output items
    first = "item " + blocks[0]
    assert first.startswith("item 1  epoch 2  fail  end state=0")
    assert "  user: Refund order 1" in first
    assert '  turn 1 call get_order({"order_id": "A1"})' in first
    assert "    -> get_order: injected fault timeout: timeout happened" in first
    assert "  turn 2 assistant: Sorry, I cannot do that." in first
    assert "stop: answer; 2 turns; 1 injected fault; asked: no" in first
    cut = [b for b in blocks if b.startswith("3  epoch 3")][0]
    assert "    -> get_order: error bad_arguments: bad_arguments happened" in cut and "stop: max_turns" in cut
    listing = json.loads(cli("eval", "items", agent_run, "--status", "fail", "--json"))
    assert listing["data"][0]["gradeloop"]["trajectory"]["stop_reason"] == "answer"
    errored = cli("eval", "items", agent_run, "--status", "error", "--trajectory")
    assert "sample error: the model endpoint failed" in errored


def test_viewer_item_page_lists_the_trajectory(agent_run):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from gradeloop.store import default_home
    from gradeloop.view import create_app

    client = TestClient(create_app(default_home() / "gradeloop.db"))
    data = client.get(f"/runs/{agent_run}/items/1.json", params={"epoch": 2}).json()
    kinds = [s["kind"] for s in data["trajectory"]]
    assert kinds == ["message", "call", "result", "message", "end"]
    assert data["trajectory"][2] == {"kind": "result", "turn": 1, "name": "get_order", "text": "timeout happened",
                                     "error": "timeout", "injected": True}
    page = client.get(f"/runs/{agent_run}/items/1", params={"epoch": 2}).text
    assert "<h2>Trajectory</h2>" in page and "injected fault timeout" in page
    assert "get_order({&quot;order_id&quot;: &quot;A1&quot;})" in page
    plain = client.get(f"/runs/{agent_run}/items/4.json", params={"epoch": 1}).json()  # errored: no trajectory
    assert plain["trajectory"] == [] and "<h2>Trajectory</h2>" not in client.get(
        f"/runs/{agent_run}/items/4", params={"epoch": 1}).text
