"""The built-in agents suite (issue 15, point 7): an order desk and a calendar as an eval directory.

Every task is checked by replaying its reference solution through the written tools.py (a plain
import) and by grading right and wrong trajectories built from it; tests/test_agents_e2e.py runs
the built suite through `gradeloop eval run`."""

import asyncio
import copy
import importlib.util
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import run_cli
from gradeloop.graders import grade_many
from gradeloop.spec import load_eval, parse_criteria
from gradeloop.suites import agents
from gradeloop.templating import sample_namespace


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("agents")
    summary = agents.build(60, 1, out)
    items = [json.loads(line)["item"] for line in (out / "data.jsonl").read_text().splitlines()]
    return out, summary, items


def _import_tools(path):
    spec = importlib.util.spec_from_file_location("written_tools", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tasks(items):
    """One item per task (the ``none`` variant)."""
    return [i for i in items if i["prompt_variant"] == "none"]


def _apply(tools, state, calls):
    state = copy.deepcopy(state)
    for call in calls:
        getattr(tools, call["name"])(state, **call["arguments"])
    return state


def test_same_seed_gives_byte_identical_files_and_another_seed_other_tasks(built, tmp_path):
    out, summary, items = built
    assert summary["items"] == len(items) == 300
    again = agents.build(60, 1, tmp_path / "again")
    for name in ("eval.yaml", "data.jsonl", "tools.py"):
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name
    assert again["counts"] == summary["counts"]
    agents.build(60, 2, tmp_path / "other")
    assert (tmp_path / "other" / "data.jsonl").read_bytes() != (out / "data.jsonl").read_bytes()
    assert (out / "tools.py").read_text() == agents.tools_source()


def test_every_reference_solution_reaches_the_expected_state_and_the_start_state_does_not(built):
    out, _, items = built
    tools = _import_tools(out / "tools.py")
    tasks = _tasks(items)
    assert len(tasks) == 60 and {t["env"] for t in tasks} == {"order_desk", "calendar"}
    for task in tasks:
        assert _apply(tools, task["state"], task["reference_calls"]) == task["expected_state"], task["id"]
        if task["no_change"]:  # the policy forbids the request: the right outcome changes nothing
            assert task["state"] == task["expected_state"] and task["forbidden_calls"], task["id"]
            assert _apply(tools, task["state"], task["forbidden_calls"]) != task["expected_state"], task["id"]
        else:
            assert task["state"] != task["expected_state"] and not task["forbidden_calls"], task["id"]
        names = [c["name"] for c in task["reference_calls"]]
        assert (names[:1] == ["ask_user"]) == task["ambiguous"] and names.count("ask_user") == task["ambiguous"]


def test_expected_states_say_what_each_kind_of_task_asks(built):
    _, _, items = built
    seen = set()
    for task in _tasks(items):
        before, after, kind = task["state"], task["expected_state"], task["kind"]
        seen.add((task["env"], kind, task["ambiguous"]))
        if task["env"] == "order_desk":
            changed = {k for k in before["orders"] if before["orders"][k] != after["orders"][k]}
            status = {k: after["orders"][k]["status"] for k in changed}
            if kind == "cancel":
                [order] = changed
                assert status[order] == "cancelled" and order in task["messages"][1]["content"]
            elif kind == "refund":
                assert len(changed) == 1 and len(after["refunds"]) == 1 and after["refunds"][0]["amount"] > 0
            elif kind == "address":
                [order] = changed
                assert (after["orders"][order]["address"] in task["messages"][1]["content"]) != task["ambiguous"]
            elif kind == "escalate":
                assert after["escalated"] is True and not changed
        else:
            added = set(after["meetings"]) - set(before["meetings"])
            removed = set(before["meetings"]) - set(after["meetings"])
            if kind in ("book", "book_next_free"):
                [new] = added
                meeting = after["meetings"][new]
                assert f'"{meeting["title"]}"' in task["messages"][1]["content"] and not removed
                assert "09:00" <= meeting["start"] and meeting["end"] <= "17:00"
                others = [m for k, m in after["meetings"].items() if k != new and m["date"] == meeting["date"]]
                assert all(meeting["end"] <= m["start"] or meeting["start"] >= m["end"] for m in others)
            elif kind == "cancel":
                assert len(removed) == 1 and not added
    # every kind of both environments occurs, and each ambiguous variant
    for env, module in (("order_desk", agents._agent_orders), ("calendar", agents._agent_calendar)):
        assert {k for e, k, a in seen if e == env and not a} == set(module.KINDS)
        assert {k for e, k, a in seen if e == env and a} == set(module.AMBIGUOUS)


def _grades(out, pairs):
    criteria = parse_criteria(yaml.safe_load((out / "eval.yaml").read_text())["testing_criteria"])
    return {c.name: [float(r.passed) for r in asyncio.run(grade_many(c, pairs))] for c in criteria}


def _sample(trajectory):
    return sample_namespace(trajectory["messages"][-1].get("content") or "", trajectory=trajectory)


def test_criteria_pass_the_reference_trajectory_and_fail_wrong_ones(built):
    out, _, items = built
    tools = _import_tools(out / "tools.py")
    chosen = {}
    for task in _tasks(items):  # one task of each (env, kind, ambiguous)
        chosen.setdefault((task["env"], task["kind"], task["ambiguous"]), task)
    tasks = list(chosen.values())
    right = [agents.reference_trajectory(t, tools) for t in tasks]
    assert all(tr["final_state"] == t["expected_state"] for tr, t in zip(right, tasks))
    assert all(c["error"] is None for tr in right for c in tr["tool_calls"])
    wrong_state = [agents.reference_trajectory(t, tools, calls=t["forbidden_calls"] if t["no_change"] else [])
                   for t in tasks]
    wrong_ask = [agents.reference_trajectory(t, tools, calls=t["reference_calls"][1:] if t["ambiguous"] else
                                             [{"name": "ask_user", "arguments": {"question": "Are you sure?"}}]
                                             + t["reference_calls"]) for t in tasks]
    clear = [t for t in tasks if not t["ambiguous"]]  # asking later on a clear task is wrong too
    ask_later = [agents.reference_trajectory(t, tools, calls=t["reference_calls"][:1] + [
        {"name": "ask_user", "arguments": {"question": "Anything else?"}}] + t["reference_calls"][1:]) for t in clear]
    pairs = [(_sample(tr), t) for tr, t in zip(right + wrong_state + wrong_ask + ask_later,
                                               tasks * 3 + clear)]
    pairs.append(({"output_text": "Done."}, tasks[0]))  # no episode at all
    scores = _grades(out, pairs)
    assert list(scores) == ["end state", "asks when needed", "no forbidden call"]
    n, forbidden = len(tasks), [float(not t["no_change"]) for t in tasks]
    assert sum(t["no_change"] for t in tasks) >= 3 and len(clear) >= 6
    assert all(scores[name][:n] == [1.0] * n for name in scores)
    assert scores["end state"][n:2 * n] == [0.0] * n
    assert scores["no forbidden call"][n:2 * n] == forbidden  # the forbidden call on no_change tasks
    assert scores["asks when needed"][n:2 * n] == [float(not t["ambiguous"]) for t in tasks]
    assert scores["asks when needed"][2 * n:3 * n] == [0.0] * n
    assert scores["end state"][2 * n:3 * n] == [1.0] * n and scores["no forbidden call"][2 * n:3 * n] == [1.0] * n
    assert scores["asks when needed"][3 * n:-1] == [0.0] * len(clear)
    assert scores["end state"][3 * n:-1] == [1.0] * len(clear)
    assert scores["end state"][-1] == scores["asks when needed"][-1] == 0.0


def test_prompt_variants_differ_only_in_the_reminders_of_the_system_prompt(built):
    _, _, items = built
    by_stem = {}
    for item in items:
        by_stem.setdefault(item["stem"], {})[item["prompt_variant"]] = item
    assert len(by_stem) == 60
    for variants in by_stem.values():
        assert list(variants) == list(agents.VARIANTS)
        base = variants["none"]["messages"][0]["content"]
        for name, item in variants.items():
            system = item["messages"][0]["content"]
            assert system.startswith(base)
            for reminder, text in agents.REMINDERS.items():
                assert (text in system) == (name in (reminder, "all"))
            rest = {k: v for k, v in item.items() if k not in ("id", "prompt_variant", "messages")}
            assert rest == {k: v for k, v in variants["none"].items() if k not in ("id", "prompt_variant", "messages")}
            assert item["messages"][1:] == variants["none"]["messages"][1:]


def test_eval_file_has_the_contract_agent_block_and_loads_whole(built):
    out, _, items = built
    data = yaml.safe_load((out / "eval.yaml").read_text())
    assert data["agent"] == {"max_turns": 12, "state": "{{ item.state }}", "final_tools": ["transfer_to_human"],
                     "tools": {"python": "tools.py"}}
    declared = [t["function"]["name"] for t in data["data_source"]["sampling_params"]["tools"]]
    tools = _import_tools(out / "tools.py")
    public = {name for name, f in vars(tools).items() if inspect.isfunction(f) and not name.startswith("_")}
    assert set(declared) == public and len(declared) == len(public) == 15
    for tool in data["data_source"]["sampling_params"]["tools"]:
        function = tool["function"]
        params = function["parameters"]
        assert tool["type"] == "function" and function["description"]
        assert params["type"] == "object" and params["additionalProperties"] is False
        signature = list(inspect.signature(getattr(tools, function["name"])).parameters)
        assert signature == ["state"] + params["required"] == ["state"] + list(params["properties"])
    # tools.py needs nothing but the standard library: it runs in an isolated interpreter without site-packages
    probe = ("import runpy, sys; ns = runpy.run_path(sys.argv[1]); s = {'env': 'calendar', 'people': {}, "
             "'meetings': {}}; print(ns['find_free_slots'](s, '2026-03-18', 480))")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe, str(out / "tools.py")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "['09:00']", done.stderr
    # the whole file loads, agent block included: tools.py read in, every declared tool implemented
    spec = load_eval(out / "eval.yaml")
    assert len(spec.rows) == len(items)
    assert [c.name for c in spec.testing_criteria] == ["end state", "asks when needed", "no forbidden call"]
    assert [c.type for c in spec.testing_criteria] == ["final_state", "multi", "no_forbidden_tool"]
    assert spec.agent.max_turns == 12 and spec.agent.final_tools == ["transfer_to_human"]
    assert spec.agent.tools.python == agents.tools_source()
    assert all(i["forbidden_tools"] == sorted({c["name"] for c in i["forbidden_calls"]}) for i in items)


def test_env_share_and_variant_options(tmp_path):
    summary = agents.build(8, 3, tmp_path / "cal", envs=["calendar"], ambiguous_share=0.5, variants=["none", "all"])
    data = yaml.safe_load((tmp_path / "cal" / "eval.yaml").read_text())
    names = {t["function"]["name"] for t in data["data_source"]["sampling_params"]["tools"]}
    assert names == {t["function"]["name"] for t in agents._agent_calendar.TOOLS} | {"ask_user"}
    assert "final_tools" not in data["agent"]
    assert summary["counts"]["env"] == {"calendar": 16} and summary["counts"]["ambiguous"] == {"false": 8, "true": 8}
    assert summary["counts"]["prompt_variant"] == {"none": 8, "all": 8}
    assert not any(i["ambiguous"] for i in agents.generate(10, 0, ambiguous_share=0.0))
    assert all(i["ambiguous"] for i in agents.generate(10, 0, ambiguous_share=1.0))
    quarter = _tasks(agents.generate(40, 0))
    assert sum(t["ambiguous"] for t in quarter if t["env"] == "order_desk") == 5
    # task k of an environment does not depend on --n
    assert agents.generate(4, 7) == agents.generate(10, 7)[:20]


def test_tools_raise_on_invalid_input(built):
    out, _, items = built
    tools = _import_tools(out / "tools.py")
    desk = copy.deepcopy(next(i for i in items if i["env"] == "order_desk")["state"])
    calendar = copy.deepcopy(next(i for i in items if i["env"] == "calendar")["state"])
    some_order = next(iter(desk["orders"]))
    bad = [(tools.get_order, desk, {"order_id": "O-0"}), (tools.get_customer, desk, {"email": "nobody@x"}),
           (tools.refund_item, desk, {"order_id": some_order, "sku": "SKU-0"}),
           (tools.update_address, desk, {"order_id": some_order, "address": "  "}),
           (tools.list_meetings, desk, {"date": "2026-03-18"}),
           (tools.list_meetings, calendar, {"date": "18/03/2026"}),
           (tools.create_meeting, calendar, {"title": "x", "date": calendar["today"], "start": "25:00",
                                             "duration_minutes": 30, "attendees": []}),
           (tools.create_meeting, calendar, {"title": "x", "date": calendar["today"], "start": "10:00",
                                             "duration_minutes": 7, "attendees": []}),
           (tools.create_meeting, calendar, {"title": "x", "date": calendar["today"], "start": "10:00",
                                             "duration_minutes": 30, "attendees": ["who@example.com"]}),
           (tools.cancel_meeting, calendar, {"meeting_id": "M-1"})]
    for function, state, arguments in bad:
        before = copy.deepcopy(state)
        with pytest.raises(ValueError):
            function(state, **arguments)
        assert state == before, function.__name__
    with pytest.raises(TypeError):
        tools.get_order(desk, order="x")


def test_cli_builds_the_suite_and_refuses_bad_flags(tmp_path):
    done = run_cli("suite", "agents", "build", "--n", "6", "--seed", "1", "--env", "order_desk",
                   "--variants", "none,persistence", "--out", str(tmp_path / "a"), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["items"] == 12 and summary["counts"]["env"] == {"order_desk": 12}
    assert {p.name for p in (tmp_path / "a").iterdir()} == {"eval.yaml", "data.jsonl", "tools.py"}
    assert (tmp_path / "a" / "data.jsonl").read_bytes() == \
        (agents.build(6, 1, tmp_path / "b", envs=["order_desk"], variants=["none", "persistence"])
         and (tmp_path / "b" / "data.jsonl").read_bytes())
    for flag, value in (("--ambiguous-share", "1.5"), ("--env", "garage"), ("--variants", "shout"), ("--n", "0")):
        bad = run_cli("suite", "agents", "build", flag, value, "--out", str(tmp_path / "c"))
        assert bad.returncode == 2 and flag in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_many_seeds_build_every_scheduled_kind_and_every_reference_solution_works():
    tools = _import_tools(Path(agents.__file__).with_name("_agent_tools.py"))
    for seed in range(20):
        for task in agents.generate(60, seed, variants=["none"]):
            module = agents._MODULES[task["env"]]
            k = int(task["stem"].rsplit("-", 1)[1])
            assert (task["kind"], task["ambiguous"]) == agents._kind(module, k, 0.25), task["id"]
            assert _apply(tools, task["state"], task["reference_calls"]) == task["expected_state"], (seed, task["id"])
