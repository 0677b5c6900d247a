"""Agents end to end (issue 15): the built-in suite, built and run with `gradeloop eval run`
against the fake OpenAI server, graded, and reported by `eval show` and `eval items`.

The scripted models are players of the items' own reference solutions: ``reference`` makes each
item's ``reference_calls`` one per turn and answers; ``wrong`` breaks the policy or asks at the
wrong time on purpose; ``grit`` follows the reference calls under injected tool faults, retrying
a failed call on calendar tasks and giving up on order-desk tasks. Every expected figure below
is worked out from those rules, the items' fields and where the seeded faults fell (each
episode's tool calls), not read back from the metrics. The responder reacts to tool results
(a retry after an error), so it is written here rather than with ``scripted_turns``."""

import json

import pytest

from gradeloop.testing import FakeOpenAI, tool_call

SORRY = "Sorry, our systems are failing right now. Please try again later."
FINAL = {False: "Done.", True: "The policy does not allow that, so I changed nothing."}  # by no_change


def cli(*args, code=0):
    from typer.testing import CliRunner

    from gradeloop.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("agents-e2e")
    cli("suite", "agents", "build", "--n", 12, "--seed", 1, "--variants", "none", "--out", out)
    items = [json.loads(line)["item"] for line in (out / "data.jsonl").read_text().splitlines()]
    # the build has what the checks below need: both environments, ambiguous and clear tasks
    # in each, and a task the policy forbids
    for env in ("order_desk", "calendar"):
        assert {i["ambiguous"] for i in items if i["env"] == env} == {True, False}
    assert any(i["no_change"] for i in items)
    return out / "eval.yaml", items


def _failed(message):
    """The agents' reading of a tool result: an error object, or JSON cut off mid-way."""
    content = message["content"]
    if not content.startswith("{"):
        return False
    try:
        return "error" in json.loads(content)
    except ValueError:
        return True


def _wrong_calls(item):
    """The wrong agent: it makes the forbidden call; assumes instead of asking on ambiguous
    calendar tasks; asks needlessly on clear calendar tasks; elsewhere it is right."""
    calls = item["reference_calls"]
    if item["no_change"]:
        return item["reference_calls"] + item["forbidden_calls"]
    if item["env"] == "calendar":
        ask = {"name": "ask_user", "arguments": {"question": "Could you tell me more?"}}
        return calls[1:] if item["ambiguous"] else [ask] + calls
    return calls


def _reply(item, model, messages):
    """The scripted model's next assistant message for an item's conversation so far."""
    calls = _wrong_calls(item) if model == "wrong" else item["reference_calls"]
    results = [m for m in messages if m["role"] == "tool"]
    if model == "grit":
        if results and _failed(results[-1]) and item["env"] == "order_desk":
            return SORRY
        done = sum(not _failed(m) for m in results)  # a failed call is made again
    else:
        done = len(results)
    if done >= len(calls):
        return FINAL[item["no_change"]]
    call = calls[done]
    return {"content": None, "tool_calls": [tool_call(call["name"], call["arguments"], f"call_{len(results) + 1}")]}


def responder(items):
    """The fake server's responder: the model named in the request plays the item whose request opens
    the conversation."""
    by_request = {i["messages"][1]["content"]: i for i in items}

    def respond(body):
        request = next(m["content"] for m in body["messages"] if m["role"] == "user")
        return _reply(by_request[request], body["model"], body["messages"])
    return respond


def _run(path, server, *models, extra=()):
    args = ["eval", "run", path, "--base-url", server.url, "--no-progress", "--json", *extra]
    for model in models:
        args += ["-m", f"openai/{model}"]
    runs = json.loads(cli(*args).stdout)["data"]
    return [r["id"] for r in runs]


def _show(run_id, *extra):
    return json.loads(cli("eval", "show", run_id, "--json", *extra).stdout)


def _items(run_id):
    """``{(item id, epoch): output item}`` of a run."""
    data = json.loads(cli("eval", "items", run_id, "--json").stdout)["data"]
    return {(o["datasource_item"]["id"], o["epoch"]): o for o in data}


def _criteria(output_item):
    return {r["name"].rsplit("-", 1)[0]: r["passed"] for r in output_item["results"]}  # "end state-<hash>"


def test_reference_agent_passes_everything_and_a_wrong_agent_fails_the_right_criteria(suite):
    path, items = suite
    with FakeOpenAI(responder=responder(items)) as server:
        reference, wrong = _run(path, server, "reference", "wrong")
    # every reference episode: the reference calls, in order, all answered, then the answer
    for (item_id, _), o in _items(reference).items():
        item = next(i for i in items if i["id"] == item_id)
        trajectory = o["gradeloop"]["trajectory"]
        assert o["status"] == "pass", (item_id, o["results"])
        assert [(c["name"], c["arguments"]) for c in trajectory["tool_calls"]] == \
            [(c["name"], c["arguments"]) for c in item["reference_calls"]]
        assert all(c["error"] is None for c in trajectory["tool_calls"])
        assert trajectory["final_state"] == item["expected_state"] and trajectory["stop_reason"] == "answer"
        assert trajectory["asked"] is item["ambiguous"] and trajectory["turns"] == len(item["reference_calls"]) + 1
    assert _show(reference)["result_counts"] == {"total": 12, "passed": 12, "failed": 0, "errored": 0}

    outputs = _items(wrong)
    for item in items:
        got = _criteria(outputs[item["id"], 0])
        calendar_ask = item["env"] == "calendar" and not item["no_change"]
        assert got == {"end state": not item["no_change"], "asks when needed": not calendar_ask,
                       "no forbidden call": not item["no_change"]}, item["id"]
    # clarification of the wrong agent: it asks first on ambiguous order-desk tasks (right) and on
    # clear calendar tasks (wrong), never on ambiguous calendar tasks
    asked_right = sum(i["ambiguous"] and i["env"] == "order_desk" for i in items)
    asked_wrong = sum(not i["ambiguous"] and i["env"] == "calendar" and not i["no_change"] for i in items)
    clarification = _show(wrong)["gradeloop"]["agent"]["clarification"]
    assert clarification["precision"] == pytest.approx(asked_right / (asked_right + asked_wrong))
    assert clarification["recall"] == pytest.approx(asked_right / sum(i["ambiguous"] for i in items))
    assert 0 < clarification["precision"] < 1 and 0 < clarification["recall"] < 1
    assert _show(reference)["gradeloop"]["agent"]["clarification"]["precision"] == 1.0

    # the failures, turn by turn: the forbidden call, and the needless question
    text = cli("eval", "items", wrong, "--status", "fail", "--trajectory").stdout
    failed = [i for i in items if i["no_change"] or (i["env"] == "calendar")]
    assert text.count("\nitem ") + text.startswith("item ") == len(failed)
    forbidden = next(i for i in items if i["no_change"])["forbidden_calls"][0]
    assert f"call {forbidden['name']}(" in text and "call ask_user(" in text
    assert "stop: answer" in text and "asked: yes" in text and "-> ask_user: " in text
    assert all(f"({i['id']})  epoch 0  fail" in text for i in failed)  # each episode under its item's id


def _hand_metrics(items, outputs):
    """The grit agent's figures from its rules: calendar episodes always pass (a failed call is
    made again), order-desk episodes with a fault give up and pass only when nothing was to change."""
    rows = []
    for (item_id, epoch), o in outputs.items():
        item = next(i for i in items if i["id"] == item_id)
        calls = o["gradeloop"]["trajectory"]["tool_calls"]
        faulted = any((c["error"] or {}).get("injected") for c in calls)
        assert o["gradeloop"]["trajectory"]["faults"] == sum(bool((c["error"] or {}).get("injected")) for c in calls)
        gave_up = faulted and item["env"] == "order_desk"
        passed = not (gave_up and not item["no_change"])
        assert (o["status"] == "pass") == passed, (item_id, epoch, o["results"])
        outcome = None if not faulted else "recovered" if not gave_up else "answered" if passed else "gave_up"
        rows.append({"item": item_id, "env": item["env"], "faulted": faulted, "passed": passed, "outcome": outcome})
    return rows


def test_grit_under_tool_faults_with_two_epochs(suite):
    path, items = suite
    with FakeOpenAI(responder=responder(items)) as server:
        [run_id] = _run(path, server, "grit", extra=["--epochs", "2", "--tool-fault-rate", "0.3"])
    outputs = _items(run_id)
    assert len(outputs) == 24
    rows = _hand_metrics(items, outputs)
    outcomes = [r["outcome"] for r in rows]
    # the seeded faults hit both environments, some episodes of an item and not others
    assert outcomes.count("recovered") and outcomes.count("gave_up") and not all(r["faulted"] for r in rows)
    obj = _show(run_id, "--by", "env")["gradeloop"]

    per_item = {}
    for r in rows:
        per_item.setdefault(r["item"], []).append(r["passed"])
    consistency = obj["consistency"]
    assert consistency["epochs"] == 2 and consistency["items"] == 12
    overall = consistency["overall"]
    assert overall["pass_at_k"]["1"] == pytest.approx(sum(sum(p) / 2 for p in per_item.values()) / 12)
    assert overall["pass_at_k"]["2"] == pytest.approx(sum(any(p) for p in per_item.values()) / 12)
    assert overall["pass_hat_k"]["2"] == pytest.approx(sum(all(p) for p in per_item.values()) / 12)
    assert overall["pass_hat_k"]["2"] < overall["pass_at_k"]["2"]
    assert obj["pass_hat_k"] == pytest.approx(overall["pass_hat_k"])  # the run's own figures agree
    by_env = {g["value"]: g for g in consistency["by"]["env"]}
    assert by_env["calendar"]["pass_hat_k"]["2"] == 1.0  # the agent that retries never fails
    desk = [p for item_id, p in per_item.items() if item_id.startswith("order_desk")]
    assert by_env["order_desk"]["pass_hat_k"]["2"] == pytest.approx(sum(all(p) for p in desk) / len(desk))

    agent = obj["agent"]
    faulted = [r for r in rows if r["faulted"]]
    clean = [r for r in rows if not r["faulted"]]
    faults = agent["faults"]
    assert faults["with_faults"]["episodes"] == len(faulted)
    assert faults["with_faults"]["rate"] == pytest.approx(sum(r["passed"] for r in faulted) / len(faulted))
    assert faults["without_faults"] == {"episodes": len(clean), "passed": len(clean), "rate": 1.0}
    both = [i for i in per_item if {r["faulted"] for r in rows if r["item"] == i} == {True, False}]
    with_f = [sum(r["passed"] for r in rows if r["item"] == i and r["faulted"])
              / sum(r["faulted"] for r in rows if r["item"] == i) for i in both]
    assert faults["paired"]["items"] == len(both) and faults["paired"]["without_faults"] == pytest.approx(1.0)
    assert faults["paired"]["with_faults"] == pytest.approx(sum(with_f) / len(both))
    judged = [o for o in outcomes if o]
    grit = agent["grit_injected"]
    assert grit["recovered"] == outcomes.count("recovered") and grit["gave_up"] == outcomes.count("gave_up")
    assert grit["recovery_rate"] == pytest.approx(outcomes.count("recovered") / len(judged))
    assert grit["gave_up_rate"] == pytest.approx(outcomes.count("gave_up") / len(judged))
    assert agent["grit"]["recovery_rate"] == grit["recovery_rate"]  # no call failed but the injected ones
    assert agent["clarification"]["precision"] == agent["clarification"]["recall"] == 1.0
    groups = {g["value"]: g for g in agent["by"]["env"]}
    assert groups["calendar"]["grit"]["recovery_rate"] == 1.0 and groups["order_desk"]["grit"]["recovery_rate"] == 0.0

    # the same figures for people, and each failed episode turn by turn, its injected faults marked
    shown = cli("eval", "show", run_id, "--by", "env").stdout
    assert "pass^2" in shown and "success with injected faults" in shown and "recovered" in shown
    text = cli("eval", "items", run_id, "--status", "fail", "--trajectory").stdout
    assert text.count("-> ") >= 1 and "injected fault" in text and SORRY in text
    assert text.count("epoch ") == sum(not r["passed"] for r in rows)


def test_wrong_input_gives_one_line_and_exit_2(suite, tmp_path):
    """Through the real console entry: each mistake is one line on stderr naming the field or flag."""
    from conftest import EXAMPLES, run_cli

    path, _ = suite
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("eval.yaml", "data.jsonl"):
        (broken / name).write_bytes((path.parent / name).read_bytes())
    tools = (path.parent / "tools.py").read_text()
    (broken / "tools.py").write_text(tools.replace("def cancel_order(", "def _cancel_order("))
    lines = path.read_text().splitlines()
    line = lines.index("  tools:", lines.index("agent:")) + 1  # the agent block's tools, where the fix goes
    cases = [
        ([broken / "eval.yaml"], f"eval.yaml:{line}: agent.tools: tool 'cancel_order' has no implementation"),
        ([path, "--tool-fault-rate", "1.5"], "--tool-fault-rate: 1.5 is not allowed"),
        ([path, "--tool-fault-rate", "often"], "--tool-fault-rate: 'often' is not a number"),
        ([EXAMPLES / "ticket-triage.yaml", "--tool-fault-rate", "0.2"], "--tool-fault-rate: "),
    ]
    for args, expected in cases:
        result = run_cli("eval", "run", *map(str, args), "-m", "openai/x", "--base-url", "http://127.0.0.1:9/v1",
                         "--no-progress")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and expected in lines[0], result.stderr
        assert not result.stdout
    assert lines[0].endswith("has no agent: block, so no tool is run and none can fail (see docs/agents.md)")


def test_help_names_the_agent_flags():
    from typer.testing import CliRunner

    from gradeloop.cli import app

    def text(*args):
        result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "300"})
        assert result.exit_code == 0
        return " ".join(result.output.split())
    run_help = text("eval", "run")
    assert "--tool-fault-rate" in run_help and "agent.tool_faults.seed" in run_help and "pass^k" in run_help
    assert "data: [run, …]}" in run_help  # brackets are not taken for markup
    assert "data: [item, …]}; an agent episode's trajectory" in text("eval", "items")
    build_help = text("suite", "agents", "build")
    assert "--epochs 4 --tool-fault-rate 0.2" in build_help and "no forbidden call" in build_help


def test_the_suite_with_a_simulated_user(suite, tmp_path):
    """The suite's items carry user_instructions: with an agent.user block the user model answers
    ask_user from them and ends each episode when the agent is done."""
    path, items = suite
    for name in ("data.jsonl", "tools.py"):
        (tmp_path / name).write_bytes((path.parent / name).read_bytes())
    (tmp_path / "eval.yaml").write_text(path.read_text() + "  user:\n    model: openai/user\n"
                                        "    instructions: '{{ item.user_instructions }}'\n")
    agent = responder(items)

    def respond(body):
        if body["model"] != "user":
            return agent(body)
        instructions, last = body["messages"][0]["content"], body["messages"][-1]["content"]
        if last in FINAL.values():  # the agent's answer: the task is over
            return "Thank you! ###STOP###"
        return "(as the user) " + instructions.split("If the agent asks, answer: ", 1)[1]

    with FakeOpenAI(responder=respond) as server:
        [run_id] = _run(tmp_path / "eval.yaml", server, "reference")
    for (item_id, _), o in _items(run_id).items():
        item = next(i for i in items if i["id"] == item_id)
        trajectory = o["gradeloop"]["trajectory"]
        assert o["status"] == "pass" and trajectory["stop_reason"] == "user_done", item_id
        asks = [c["result"] for c in trajectory["tool_calls"] if c["name"] == "ask_user"]
        assert asks == ([f"(as the user) {item['state']['user_reply']}"] if item["ambiguous"] else [])
        assert trajectory["messages"][-1] == {"role": "user", "content": "Thank you! ###STOP###"}
