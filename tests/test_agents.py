"""Agent episodes (issue 15): tools answered in the sandbox, canned or over MCP; the loop until an
answer, max_turns or a final tool; every turn stored; the cache keyed on the whole conversation;
seeded tool faults; the simulated user. Models are the fake OpenAI server with scripted turns."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from conftest import run_cli
from gradeloop import RunOptions, Store, load_eval, output_item_objects, run_eval
from gradeloop.errors import InputError
from gradeloop.testing import FakeOpenAI, scripted_turns, tool_call

HERE = Path(__file__).resolve().parent

TOOLS_PY = '''
def get_order(state, order_id):
    return state["orders"].get(order_id, "no such order")


def cancel_order(state, order_id):
    if state["orders"][order_id]["status"] != "open":
        raise ValueError(f"order {order_id} is not open")
    state["orders"][order_id]["status"] = "canceled"
    return {"canceled": order_id}


def transfer_to_human(state, reason):
    state["transferred"] = reason
    return "transferred"
'''


def fn(name: str, **props: str) -> dict:
    return {"type": "function", "function": {"name": name, "parameters": {
        "type": "object", "properties": {k: {"type": v} for k, v in props.items()}}}}


TOOLS = [fn("get_order", order_id="string"), fn("cancel_order", order_id="string"),
         fn("transfer_to_human", reason="string")]
STATE = {"orders": {"A1": {"status": "open"}, "B2": {"status": "shipped"}}}


# a conversation that opens with the system message alone: the simulated user speaks first
ORDER_DESK_ONLY = [{"role": "system", "content": "Order desk."}]


def write_eval(tmp_path: Path, items: list[dict], *, agent: dict | None = None, tools: list | None = None,
               criteria: list | None = None, template: list | None = None) -> Path:
    (tmp_path / "tools.py").write_text(TOOLS_PY)
    block = {"max_turns": 5, "state": "{{ item.state }}", "final_tools": ["transfer_to_human"],
             "tools": {"python": "tools.py"}}
    block.update(agent or {})
    definition = {
        "name": "orders",
        "data_source_config": {"type": "custom"},
        "testing_criteria": criteria or [{"type": "string_check", "name": "stop", "operation": "eq",
                                          "input": "{{ sample.trajectory.stop_reason }}", "reference": "answer"}],
        "agent": block,
        "data_source": {"type": "completions",
                        "source": {"type": "file_content", "content": [{"item": i} for i in items]},
                        "input_messages": {"type": "template", "template": template or [
                            {"role": "system", "content": "You run the order desk."},
                            {"role": "user", "content": "{{ item.q }}"}]},
                        "sampling_params": {"tools": TOOLS if tools is None else tools}},
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


def run(path: Path, server: FakeOpenAI, **options) -> tuple[Store, str]:
    store = Store()
    [run_id] = run_eval(path, ["openai/fake"], store=store, options=RunOptions(base_url=server.url, **options))
    return store, run_id


def trajectory(store: Store, run_id: str, index: int = 0, epoch: int = 0) -> dict:
    row = store.conn.execute("SELECT trajectory FROM samples WHERE run_id = ? AND idx = ? AND epoch = ?",
                             (run_id, index, epoch)).fetchone()
    return json.loads(row[0])


PARALLEL = [
    {"content": None, "tool_calls": [tool_call("get_order", {"order_id": "A1"}, "c1"),
                                     tool_call("get_order", {"order_id": "B2"}, "c2")]},
    {"content": None, "tool_calls": [tool_call("cancel_order", {"order_id": "A1"}, "c3"),
                                     tool_call("cancel_order", {"order_id": "B2"}, "c4")]},
    "A1 is canceled; B2 has shipped already.",
]


def test_episode_with_parallel_calls_and_a_tool_error(tmp_path):
    path = write_eval(tmp_path, [{"q": "cancel my orders", "state": STATE}])
    with FakeOpenAI(responder=scripted_turns({"cancel my orders": PARALLEL})) as server:
        store, run_id = run(path, server)
        bodies = server.chat_bodies()
    assert len(bodies) == 3
    # the second request carries the whole conversation: both results of the parallel calls, in order
    second = bodies[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool", "tool"]
    assert [m["tool_call_id"] for m in second[3:]] == ["c1", "c2"]
    assert json.loads(second[3]["content"]) == {"status": "open"}
    assert bodies[0]["tools"] == TOOLS  # the declared function tools reach the model as OpenAI sends them
    traj = trajectory(store, run_id)
    assert traj["stop_reason"] == "answer" and traj["turns"] == 3 and traj["faults"] == 0
    assert traj["final_state"]["orders"]["A1"]["status"] == "canceled"  # the sandboxed tool changed the state
    calls = traj["tool_calls"]
    assert [(c["turn"], c["id"], c["name"]) for c in calls] == [
        (1, "c1", "get_order"), (1, "c2", "get_order"), (2, "c3", "cancel_order"), (2, "c4", "cancel_order")]
    assert calls[0]["arguments"] == {"order_id": "A1"} and calls[2]["result"] == {"canceled": "A1"}
    assert calls[3]["result"] is None
    assert calls[3]["error"] == {"type": "tool_error", "message": "ValueError: order B2 is not open",
                                 "injected": False}
    assert traj["messages"][-1] == {"role": "assistant", "content": "A1 is canceled; B2 has shipped already."}
    [item] = output_item_objects(store, run_id)
    assert item["status"] == "pass"
    assert item["sample"]["output"][0]["content"] == "A1 is canceled; B2 has shipped already."
    # every turn was stored as it happened, with its model call
    turns = store.turns(run_id, 0, 0)
    assert [t["turn"] for t in turns] == [1, 2, 3]
    assert [r["id"] for r in turns[1]["tool_calls"]] == ["c3", "c4"]
    assert store.conn.execute("SELECT COUNT(*) FROM model_calls WHERE run_id = ?", (run_id,)).fetchone()[0] == 3


def test_max_turns_is_an_outcome_not_an_error(tmp_path):
    forever = [{"content": None, "tool_calls": [tool_call("get_order", {"order_id": "A1"}, "again")]}]
    path = write_eval(tmp_path, [{"q": "loop", "state": STATE}], agent={"max_turns": 3},
                      criteria=[{"type": "string_check", "name": "stop", "operation": "eq",
                                 "input": "{{ sample.trajectory.stop_reason }}", "reference": "max_turns"}])
    with FakeOpenAI(responder=scripted_turns({"loop": forever})) as server:
        store, run_id = run(path, server)
        assert len(server.requests) == 3
    traj = trajectory(store, run_id)
    assert traj["stop_reason"] == "max_turns" and traj["turns"] == 3 and len(traj["tool_calls"]) == 3
    [item] = output_item_objects(store, run_id)
    assert item["status"] == "pass"  # graded like any outcome


def test_final_tool_ends_the_episode_and_canned_results_follow_arguments(tmp_path):
    script = [{"content": None, "tool_calls": [tool_call("lookup", {"sku": "X"}, "k1"),
                                               tool_call("lookup", {"sku": "Z"}, "k2")]},
              {"content": None, "tool_calls": [tool_call("transfer_to_human", {"reason": "refund"}, "t1")]},
              "never asked for"]
    canned = {"lookup": [{"arguments": {"sku": "X"}, "result": {"price": 3}}, {"result": "unknown sku"}]}
    path = write_eval(tmp_path, [{"q": "price?", "state": STATE, "canned": canned}],
                      agent={"tools": {"python": "tools.py", "canned": "{{ item.canned }}"}},
                      tools=TOOLS + [fn("lookup", sku="string")])
    with FakeOpenAI(responder=scripted_turns({"price?": script})) as server:
        store, run_id = run(path, server)
        assert len(server.requests) == 2
    traj = trajectory(store, run_id)
    assert traj["stop_reason"] == "final_tool" and traj["turns"] == 2
    assert [c["result"] for c in traj["tool_calls"]] == [{"price": 3}, "unknown sku", "transferred"]
    assert traj["final_state"]["transferred"] == "refund"


def test_bad_arguments_and_unknown_tools_are_error_results(tmp_path):
    script = [{"content": None, "tool_calls": [tool_call("get_order", "{not json", "b1"),
                                               tool_call("launch_rocket", {}, "b2")]}, "sorry"]
    path = write_eval(tmp_path, [{"q": "weird", "state": STATE}])
    with FakeOpenAI(responder=scripted_turns({"weird": script})) as server:
        store, run_id = run(path, server)
    calls = trajectory(store, run_id)["tool_calls"]
    assert calls[0]["arguments"] == "{not json" and calls[0]["error"]["type"] == "bad_arguments"
    assert calls[1]["error"]["type"] == "unknown_tool"


def test_the_cache_keys_each_call_on_the_whole_conversation(tmp_path):
    path = write_eval(tmp_path, [{"q": "cancel my orders", "state": STATE}])
    with FakeOpenAI(responder=scripted_turns({"cancel my orders": PARALLEL})) as server:
        run(path, server)
        assert len(server.requests) == 3
        run(path, server)  # the same episode again: every turn comes from the cache
        assert len(server.requests) == 3
        other = {"orders": {"A1": {"status": "shipped"}, "B2": {"status": "shipped"}}}
        write_eval(tmp_path, [{"q": "cancel my orders", "state": other}])
        store, run_id = run(path, server)  # same first turn, different tool results from then on
        assert len(server.requests) == 5
    second_body = server.chat_bodies()[3]["messages"]
    assert json.loads(second_body[3]["content"]) == {"status": "shipped"}
    assert trajectory(store, run_id)["final_state"] == other


def test_tool_faults_are_seeded_and_recorded(tmp_path):
    items = [{"q": f"order {i}", "state": STATE} for i in range(12)]
    scripts = {f"order {i}": [{"content": None, "tool_calls": [tool_call("get_order", {"order_id": "A1"}, "f1"),
                                                              tool_call("get_order", {"order_id": "B2"}, "f2")]},
                              "done"] for i in range(12)}
    path = write_eval(tmp_path, items, agent={"tool_faults": {"rate": 0.5, "seed": 7}})

    def faults_of(store, run_id):
        out = []
        for i in range(12):
            calls = trajectory(store, run_id, i)["tool_calls"]
            out.append(tuple((c["error"] or {}).get("type") for c in calls))
        return out

    with FakeOpenAI(responder=scripted_turns(scripts)) as server:
        first = faults_of(*run(path, server, use_cache=False))
        again = faults_of(*run(path, server, use_cache=False))
        store, run_id = run(path, server, use_cache=False, tool_fault_rate=1.0)
        every = faults_of(store, run_id)
        none = faults_of(*run(path, server, use_cache=False, tool_fault_rate=0.0))
    assert first == again  # the same seed injects the same faults on the same calls
    injected = [kind for pair in first for kind in pair if kind]
    assert 0 < len(injected) < 24 and set(injected) <= {"server_error", "timeout", "rate_limit", "malformed"}
    assert all(all(pair) for pair in every) and not any(any(pair) for pair in none)
    traj = trajectory(store, run_id)
    assert traj["faults"] == 2 and all(c["error"]["injected"] for c in traj["tool_calls"])
    assert traj["final_state"] == STATE  # a failed call never reached the tool
    config = store.get_run(run_id)["config"]
    assert config["tool_fault_rate"] == 1.0  # a resume injects the same faults


def test_tool_fault_rate_flag(tmp_path):
    path = write_eval(tmp_path, [{"q": "x", "state": STATE}])
    result = run_cli("eval", "run", str(path), "-m", "openai/fake", "--base-url", "http://127.0.0.1:9/v1",
                     "--tool-fault-rate", "1.5", "--no-progress")
    assert result.returncode == 2 and "--tool-fault-rate: 1.5 is not allowed" in result.stderr
    script = [{"content": None, "tool_calls": [tool_call("get_order", {"order_id": "A1"}, "f1")]}, "ok"]
    with FakeOpenAI(responder=scripted_turns({"x": script})) as server:
        result = run_cli("eval", "run", str(path), "-m", "openai/fake", "--base-url", server.url,
                         "--tool-fault-rate", "1", "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["data"][0]["id"]
    traj = trajectory(Store(), run_id)
    assert traj["faults"] == 1 and traj["tool_calls"][0]["error"]["injected"] is True


def test_mcp_server_over_stdio(tmp_path):
    pytest.importorskip("mcp")
    (tmp_path / "server.py").write_text((HERE / "mcp_order_server.py").read_text())
    script = [{"content": None, "tool_calls": [tool_call("order_status", {"order_id": "A1"}, "m1"),
                                               tool_call("order_status", {"order_id": "ZZ"}, "m2")]},
              {"content": None, "tool_calls": [tool_call("cancel_order", {"order_id": "B2"}, "m3")]},
              "done"]
    path = write_eval(tmp_path, [{"q": "mcp", "state": STATE}], tools=[],
                      agent={"tools": {"mcp": [{"command": [sys.executable, "server.py"]}]}, "final_tools": []})
    with FakeOpenAI(responder=scripted_turns({"mcp": script})) as server:
        store, run_id = run(path, server)
        offered = {t["function"]["name"] for t in server.chat_bodies()[0]["tools"]}
    assert offered == {"order_status", "cancel_order"}  # the server's tools, as OpenAI function tools
    calls = trajectory(store, run_id)["tool_calls"]
    assert calls[0]["result"] == "shipped" and calls[0]["error"] is None
    assert calls[1]["error"]["type"] == "tool_error" and "no order ZZ" in calls[1]["error"]["message"]
    assert calls[2]["result"] == "order B2 canceled"


def test_simulated_user_ends_the_episode(tmp_path):
    def responder(body):
        if body["model"] == "user-sim":
            system = body["messages"][0]["content"]
            assert "order A1" in system  # the item's instructions reach the user model
            said = [m["content"] for m in body["messages"] if m["role"] == "user"]
            if not said:
                return "Hi, I need help with an order."
            if said[-1].startswith("Which order"):
                return "Order A1, please cancel it."
            return "###STOP###"
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
        if turn == 0:
            return {"content": None, "tool_calls": [tool_call("ask_user", {"question": "Which order?"}, "u1")]}
        if turn == 1:
            return {"content": None, "tool_calls": [tool_call("cancel_order", {"order_id": "A1"}, "u2")]}
        return "Order A1 is canceled."

    path = write_eval(tmp_path, [{"q": "unused", "state": STATE, "who": "You want order A1 canceled."}],
                      tools=TOOLS + [fn("ask_user", question="string")],
                      agent={"user": {"model": "openai/user-sim", "instructions": "{{ item.who }}"}},
                      template=ORDER_DESK_ONLY)
    with FakeOpenAI(responder=responder) as server:
        store, run_id = run(path, server)
    traj = trajectory(store, run_id)
    assert traj["stop_reason"] == "user_done" and traj["asked"] is True
    roles = [m["role"] for m in traj["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant", "user"]
    assert traj["messages"][1]["content"] == "Hi, I need help with an order."
    assert traj["tool_calls"][0]["result"] == "Order A1, please cancel it."
    assert traj["final_state"]["orders"]["A1"]["status"] == "canceled"
    purposes = [r[0] for r in store.conn.execute("SELECT purpose FROM model_calls ORDER BY id")]
    assert purposes.count("user") == 3 and purposes.count("sample") == 3


def test_a_tool_without_implementation_is_refused_at_load(tmp_path):
    path = write_eval(tmp_path, [{"q": "x", "state": STATE}], tools=TOOLS + [fn("refund", order_id="string")])
    with pytest.raises(InputError) as info:
        load_eval(path)
    assert info.value.field == "agent.tools" and info.value.line and "refund" in info.value.message
    result = run_cli("eval", "run", str(path), "-m", "openai/fake", "--no-progress")
    assert result.returncode == 2 and "eval.yaml" in result.stderr and "refund" in result.stderr


def test_item_state_must_be_an_object(tmp_path):
    path = write_eval(tmp_path, [{"q": "x", "state": STATE}, {"q": "y", "state": [1, 2]}])
    with pytest.raises(InputError) as info:
        load_eval(path)
    assert "agent.state" in info.value.message and info.value.line is not None


def test_the_worked_example_of_docs_agents_md(tmp_path):
    example = HERE.parent / "examples" / "order-desk"
    a1 = [{"content": None, "tool_calls": [tool_call("get_order", {"order_id": "A1"}, "call_1")]},
          {"content": None, "tool_calls": [tool_call("cancel_order", {"order_id": "A1"}, "call_2")]},
          "Order A1 is canceled."]
    b2 = [{"content": None, "tool_calls": [tool_call("cancel_order", {"order_id": "B2"}, "call_1")]},
          "B2 has shipped, so it cannot be canceled."]
    scripts = {"Please cancel order A1.": a1, "Cancel B2, I changed my mind.": b2}
    with FakeOpenAI(responder=scripted_turns(scripts)) as server:
        store, run_id = run(example / "eval.yaml", server)
        [second] = [b["messages"] for b in server.chat_bodies() if b["messages"][1]["content"].startswith("Please")
                    and len(b["messages"]) == 4]
    items = sorted(output_item_objects(store, run_id), key=lambda o: o["datasource_item_id"])
    assert [o["status"] for o in items] == ["pass", "pass"]
    assert trajectory(store, run_id, 0)["final_state"]["orders"]["A1"]["status"] == "canceled"
    error = trajectory(store, run_id, 1)["tool_calls"][0]["error"]
    assert error["message"] == "ValueError: order B2 is shipped; only open orders can be canceled"
    assert second[3] == {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "open", "items": ["mug"]}'}


def test_python_tools_run_in_the_sandbox(monkeypatch):
    from gradeloop.graders._python import ToolSource, get_pool

    monkeypatch.setenv("OPENAI_API_KEY", "sk-agent-tool-test")  # the worker, started now, must not see it

    source = ToolSource(
        "import os, socket\n"
        "def dial(state):\n    state['dialed'] = True\n    socket.create_connection(('127.0.0.1', 80))\n"
        "def escape(state):\n    open('/tmp/gradeloop-agent-escape', 'w').write('x')\n"
        "def whoami(state):\n    return {'pid': os.getpid(), 'secret': os.environ.get('OPENAI_API_KEY')}\n"
        "def keep(state, n):\n    state['n'] = n\n    return n\n")
    pool = get_pool()
    dialed = pool.call_tool_sync(source, "dial", {}, {})
    assert dialed["status"] == "error" and "not allowed" in dialed["details"]
    escaped = pool.call_tool_sync(source, "escape", {}, {})
    assert escaped["status"] == "error" and not Path("/tmp/gradeloop-agent-escape").exists()
    who = pool.call_tool_sync(source, "whoami", {}, {})
    assert who["status"] == "returned" and who["result"]["secret"] is None
    assert pool.call_tool_sync(source, "keep", {"n": 3}, {"n": 1}) == {"status": "returned", "result": 3,
                                                                         "state": {"n": 3}}


def test_user_instructions_must_resolve_for_every_item(tmp_path):
    path = write_eval(tmp_path, [{"q": "x", "state": STATE}],
                      agent={"user": {"model": "openai/u", "instructions": "{{ item.persona }}"}})
    with pytest.raises(InputError) as info:
        load_eval(path)
    assert "persona" in info.value.message and info.value.line is not None


def test_the_agent_block_is_checked_with_file_line_and_field(tmp_path):
    path = write_eval(tmp_path, [{"q": "x", "state": STATE}], agent={"max_turns": 0})
    with pytest.raises(InputError) as info:
        load_eval(path)
    assert info.value.field == "agent.max_turns" and info.value.line is not None
    path = write_eval(tmp_path, [{"q": "x", "state": STATE}], agent={"tool_faults": {"rate": 0.2, "kinds": ["flood"]}})
    with pytest.raises(InputError) as info:
        load_eval(path)
    assert info.value.field.startswith("agent.tool_faults.kinds")
    path = write_eval(tmp_path, [{"q": "x", "state": STATE}], agent={"turns": 3})
    with pytest.raises(InputError) as info:
        load_eval(path)
    assert info.value.field == "agent.turns"


def test_tool_choice_and_parallel_tool_calls_reach_the_model(tmp_path):
    path = write_eval(tmp_path, [{"q": "x", "state": STATE}])
    definition = yaml.safe_load(path.read_text())
    definition["data_source"]["sampling_params"].update(
        {"tool_choice": {"type": "function", "function": {"name": "get_order"}}, "parallel_tool_calls": False})
    path.write_text(yaml.safe_dump(definition))
    with FakeOpenAI(responder=scripted_turns({"x": ["fine"]})) as server:
        run(path, server)
        [body] = server.chat_bodies()
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_order"}}
    assert body["parallel_tool_calls"] is False


def test_an_episode_on_the_scripted_provider(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump([{"match": "status", "tool_calls": [tool_call("get_order", {"order_id": "B2"})]},
                                     {"response": "hello"}]))
    path = write_eval(tmp_path, [{"q": "status of B2?", "state": STATE}, {"q": "hi", "state": STATE}],
                      agent={"max_turns": 2})
    store = Store()
    [run_id] = run_eval(path, [f"scripted/{rules}"], store=store, options=RunOptions())
    looping, answered = trajectory(store, run_id, 0), trajectory(store, run_id, 1)
    # the rules answer the last user message, which an episode does not change: it calls until max_turns
    assert looping["stop_reason"] == "max_turns" and looping["turns"] == 2
    assert [c["result"] for c in looping["tool_calls"]] == [{"status": "shipped"}] * 2
    assert answered["stop_reason"] == "answer" and answered["turns"] == 1


def test_fault_draws_are_the_same_in_another_process():
    import subprocess

    from gradeloop.agents import FaultPlan

    code = ("from gradeloop.agents import FaultPlan; p = FaultPlan(rate=0.3, seed=5); "
            "print([p.draw(i, e, c) for i in range(20) for e in range(2) for c in range(4)])")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    plan = FaultPlan(rate=0.3, seed=5)
    here = [plan.draw(i, e, c) for i in range(20) for e in range(2) for c in range(4)]
    assert other == str(here) and any(here) and not all(here)
    assert here != [FaultPlan(rate=0.3, seed=6).draw(i, e, c) for i in range(20) for e in range(2) for c in range(4)]


def test_simulated_user_gives_up_and_a_question_in_text_counts_as_asking(tmp_path):
    def responder(body):
        if body["model"] == "user-sim":
            return "###GIVE_UP###" if len(body["messages"]) > 2 else "Cancel my order."
        return "Which order do you mean?"

    path = write_eval(tmp_path, [{"q": "unused", "state": STATE}],
                      agent={"user": {"model": "openai/user-sim", "instructions": "You are vague."}},
                      template=ORDER_DESK_ONLY)
    with FakeOpenAI(responder=responder) as server:
        store, run_id = run(path, server)
    traj = trajectory(store, run_id)
    assert traj["stop_reason"] == "user_gave_up" and traj["asked"] is True and traj["turns"] == 1
    assert [m["role"] for m in traj["messages"]] == ["system", "user", "assistant", "user"]
    assert [t["turn"] for t in store.turns(run_id, 0, 0)] == [0, 1]  # the user's opening, then turn 1
