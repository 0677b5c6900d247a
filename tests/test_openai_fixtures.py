"""OpenAI's published eval bodies, graders and fine-tuning files (tests/data/openai, sources in
its SOURCES.md) read unchanged: every file validates, the evals run against a fake
OpenAI-compatible server on 127.0.0.1, the graders grade, and what only OpenAI's platform can
do is refused with the message that says what to use instead."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from gradeloop import InputError, RunOptions, Store, eval_from_dict, output_item_objects, run_eval, run_object
from gradeloop.graders import grade
from gradeloop.runner import grading_session
from gradeloop.spec import Document, load_grader, load_training_file
from gradeloop.templating import sample_namespace
from gradeloop.testing import FakeOpenAI

DATA = Path(__file__).parent / "data" / "openai"
SYMBOLS = [{"name": "MAX_RETRIES", "symbol_type": "variable"}, {"name": "Evals", "symbol_type": "class"},
           {"name": "create", "symbol_type": "function"}]
TICKETS = {"monitor": "Hardware", "vim": "Software", "restaurants": "Other"}
# published bodies gradeloop refuses by design, with what the message must say
REFUSED = {
    "it-tickets": ("data_source.source.type", "'file_id'"),
    "web-search": ("data_source.sampling_params.tools[0].type", "'web_search_preview'"),
    "mcp": ("data_source.sampling_params.tools[0].type", "'mcp'"),
    "push-notifications": ("data_source_config.type", "'stored_completions'"),
}


def read(path: str) -> dict:
    return json.loads((DATA / path).read_text())


def runs_of(name: str) -> list[Path]:
    return sorted(p for p in (DATA / "evals").glob(f"{name}.*run.json"))


def body(name: str, run: Path) -> dict:
    """The create-eval body with one run's data_source: gradeloop's eval file, both bodies as published."""
    return {**read(f"evals/{name}.eval.json"), "data_source": json.loads(run.read_text())["data_source"]}


def last_user_text(request: dict) -> str:
    content = [m for m in request["messages"] if m["role"] == "user"][-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def responder(request: dict) -> str | dict:
    """A deterministic stand-in for the models the fixtures name: judges answer in OpenAI's grader
    format, tool runs call the tool, structured runs answer with the schema's JSON."""
    fmt = ((request.get("response_format") or {}).get("json_schema") or {}).get("name")
    text = last_user_text(request)
    if fmt == "score_model_result":  # the symbols reached the judge: a good extraction
        return json.dumps({"steps": [], "result": 6 if '"name": "Evals"' in text else 1})
    if fmt == "label_model_result":
        wanted = re.search(r"<Ground Truth>\n(.*)\n</Ground Truth>", text)
        ok = wanted is None or wanted.group(1).lower() in text.split("<Ground Truth>")[0].lower()
        labels = request["response_format"]["json_schema"]["schema"]["properties"]["result"]["enum"]
        return json.dumps({"steps": [], "result": labels[0] if ok else labels[1]})
    if request.get("tools"):
        arguments = json.dumps({"symbols": SYMBOLS})
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "extract_symbols", "arguments": arguments}}]}
    if fmt == "python_symbols":
        return json.dumps({"symbols": SYMBOLS})
    return next((label for word, label in TICKETS.items() if word in text), "Other")


@pytest.fixture
def server():
    with FakeOpenAI(responder=responder) as fake:
        yield fake


# -- every file validates unchanged ------------------------------------------------------------


def test_the_fixture_set_is_broad_and_every_file_has_its_source_noted():
    evals = sorted((DATA / "evals").glob("*.eval.json"))
    graders = sorted((DATA / "graders").glob("*.json"))
    assert len(evals) + len(graders) >= 10 and len(list((DATA / "evals").glob("*run.json"))) >= 8
    sources = (DATA / "SOURCES.md").read_text()
    for path in sorted(DATA.rglob("*")):
        if path.is_file() and path.name != "SOURCES.md":
            assert f"`{path.relative_to(DATA)}`" in sources, f"{path.relative_to(DATA)} has no source in SOURCES.md"


@pytest.mark.parametrize("name", sorted(p.name.removesuffix(".eval.json")
                                        for p in (DATA / "evals").glob("*.eval.json")))
def test_every_eval_body_loads_or_is_refused_with_what_to_do(name):
    for run in runs_of(name):
        if name not in REFUSED:
            spec = eval_from_dict(body(name, run), base_dir=DATA / "evals", name=run.name)
            assert spec.rows and spec.needs_model
            continue
        field, says = REFUSED[name]
        with pytest.raises(InputError) as info:
            eval_from_dict(body(name, run), base_dir=DATA / "evals", name=run.name)
        assert info.value.field == field and says in info.value.message and info.value.file == run.name


@pytest.mark.parametrize("path", sorted(p.name for p in (DATA / "graders").glob("*.json")))
def test_every_grader_loads(path):
    data = read(f"graders/{path}")
    grader = data.get("grader", data)
    loaded = load_grader(grader, Document(data=grader, file=path))
    assert loaded.type == grader["type"] and loaded.name  # unnamed ones are named after their type


@pytest.mark.parametrize("path,method", [("sft-weather.jsonl", "supervised"), ("sft-marv-weights.jsonl", "supervised"),
                                         ("dpo.jsonl", "dpo"), ("rft-security.train.jsonl", "reinforcement"),
                                         ("rft-security.valid.jsonl", "reinforcement")])
def test_every_fine_tuning_file_loads(path, method):
    grader = read("finetune/rft-security.method.json")["grader"]
    rows = load_training_file(DATA / "finetune" / path, method, grader=grader)
    assert rows == [json.loads(line) for line in (DATA / "finetune" / path).read_text().splitlines()]


# -- the evals run -----------------------------------------------------------------------------


def test_the_evals_guides_ticket_eval_runs_on_its_rows(server):
    run = DATA / "evals" / "it-tickets.run.json"
    data = body("it-tickets", run)
    # the guide's run reads an uploaded file (refused above); its rows are in the guide too
    data["data_source"]["source"] = {"type": "file", "path": "tickets.jsonl"}
    [run_id] = run_eval(eval_from_dict(data, base_dir=DATA / "evals"), options=RunOptions(base_url=server.url))
    obj = run_object(Store(), run_id)
    assert obj["model"] == "gpt-4.1" and obj["result_counts"] == {"total": 3, "errored": 0, "failed": 0, "passed": 3}
    developer = server.chat_bodies()[0]["messages"][0]
    assert developer["role"] in ("developer", "system") and developer["content"].startswith("You are an expert in categorizing")


@pytest.mark.parametrize("name", ["code-qa-tools", "code-qa-structured"])
def test_the_cookbooks_code_qa_evals_run_both_data_sources(server, name):
    for run in runs_of(name):
        server.requests.clear()
        [run_id] = run_eval(eval_from_dict(body(name, run), base_dir=DATA / "evals"),
                            options=RunOptions(base_url=server.url, use_cache=False))
        obj = run_object(Store(), run_id)
        assert obj["status"] == "completed" and obj["result_counts"]["passed"] == 1, (run.name, obj["result_counts"])
        sampled, judged = server.chat_bodies()
        assert sampled["max_completion_tokens"] == 10000 and sampled["seed"] == 42 and sampled["top_p"] == 0.9
        if name == "code-qa-tools":  # both tool spellings reach the model in chat form
            assert sampled["tools"][0]["function"]["name"] == "extract_symbols"
        else:
            assert sampled["response_format"]["json_schema"]["name"] == "python_symbols"
        assert judged["model"] == "o3" and '"name": "Evals"' in last_user_text(judged)
        [item] = output_item_objects(Store(), run_id)
        assert item["results"][0]["score"] == 6 and item["results"][0]["passed"] is True


@pytest.mark.parametrize("name", ["web-search", "mcp"])
def test_the_graders_of_refused_runs_still_grade(server, name):
    """The hosted-tool runs are refused, but their evals' graders work on any sample."""
    criteria = read(f"evals/{name}.eval.json")["testing_criteria"]
    item = json.loads(runs_of(name)[0].read_text())["data_source"]["source"]["content"][0]["item"]
    doc = Document(data={"testing_criteria": criteria}, file=f"{name}.eval.json")
    graders = [load_grader(c, doc, ("testing_criteria", i)) for i, c in enumerate(criteria)]

    async def go(output):
        async with grading_session(base_url=server.url) as ctx:
            return [await grade(g, sample_namespace(output), item, ctx) for g in graders]

    right, wrong = asyncio.run(go(f"It is {item['answer']}.")), asyncio.run(go("I could not find it."))
    assert (right[0].score, wrong[0].score) == (1.0, 0.0)
    if name == "mcp":  # the python grader asks whether a tool was called: none was
        assert right[1].score == 0.0 and not right[1].errors


# -- the graders guide's examples grade --------------------------------------------------------


def run_payload(path: str, server: FakeOpenAI):
    """OpenAI's /fine_tuning/alpha/graders/run: the payload's grader on its model_sample and item."""
    payload = read(f"graders/{path}")
    grader = load_grader(payload["grader"], Document(data=payload, file=path), ("grader",))

    async def go():
        async with grading_session(base_url=server.url) as ctx:
            return await grade(grader, sample_namespace(payload["model_sample"]), payload["item"], ctx)
    return asyncio.run(go())


def test_the_graders_guides_run_payloads_grade(server):
    from rapidfuzz import fuzz, utils

    fuzzy = run_payload("python-fuzzy.run.json", server)
    expected = fuzz.WRatio("fuzzy wuzzy was a bear", "fuzzy wuzzy had no hair", processor=utils.default_process) / 100
    assert fuzzy.score == pytest.approx(expected) and not fuzzy.errors
    scored = run_payload("score-model.run.json", server)
    assert scored.score == 1.0 and not scored.errors  # the judge's 1 within range [0, 1]
    judge = server.chat_bodies()[-1]
    assert judge["model"] == "o4-mini-2025-04-16" and judge["max_completion_tokens"] == 32768
    labelled = run_payload("label-model.run.json", server)
    assert labelled.score == 1.0 and not labelled.errors
    assert server.chat_bodies()[-1]["max_completion_tokens"] == 32768  # the example's max_tokens


def grade_offline(path: str, output: str, item: dict, tool_calls: list | None = None) -> float:
    grader = load_grader(read(path), Document(data=read(path), file=path))
    result = asyncio.run(grade(grader, sample_namespace(output, tool_calls=tool_calls), item))
    assert not result.errors, result.errors
    return result.score


def test_the_graders_guides_multi_graders_grade():
    call = {"id": "c", "type": "function", "function": {"name": "get_acceptors", "arguments": '{"smiles": "CCO"}'}}
    assert grade_offline("graders/multi-tool-call.json", "", {"smiles": "CCO"}, [call]) == 1.0
    assert grade_offline("graders/multi-tool-call.json", "", {"smiles": "CCN"}, [call]) == 0.5
    person = {"name": "John Doe", "email": "john.doe@gmail.com"}
    assert grade_offline("graders/multi-name-email.json", json.dumps(person), person) == 1.0
    typo = grade_offline("graders/multi-name-email.json", json.dumps({**person, "name": "Jon Doe"}), person)
    assert 0.5 < typo < 1.0


def test_the_rft_guides_grader_grades_with_a_judge(server):
    method = read("finetune/rft-security.method.json")
    item = json.loads((DATA / "finetune" / "rft-security.valid.jsonl").read_text().splitlines()[0])
    for path, grader_data in (("graders/rft-security.json", read("graders/rft-security.json")),
                              ("finetune/rft-security.method.json", method["grader"])):
        grader = load_grader(grader_data, Document(data=grader_data, file=path))
        assert grader.name == "multi"

        async def go(answer):
            async with grading_session(base_url=server.url) as ctx:
                return await grade(grader, sample_namespace(json.dumps(answer)), item, ctx)
        good = asyncio.run(go({"compliant": "yes", "explanation": item["explanation"]}))
        bad = asyncio.run(go({"compliant": "no", "explanation": item["explanation"]}))
        assert good.score == pytest.approx(0.5 + 0.5 * 1.0) and bad.score == pytest.approx(0.5 * 1.0)
    assert "Reference Answer: Copernicus utilizes" in last_user_text(server.chat_bodies()[-1])


def test_the_rft_guides_method_creates_a_job(tiny_model_dir):
    from gradeloop.tune._jobs import create_job, job_object

    method = read("finetune/rft-security.method.json")
    store = Store()
    job = create_job(store, model=f"hf/{tiny_model_dir}", method="reinforcement",
                     training_file=DATA / "finetune" / "rft-security.train.jsonl",
                     validation_file=DATA / "finetune" / "rft-security.valid.jsonl", grader=method["grader"],
                     hyperparameters=method["hyperparameters"], options={"response_format": method["response_format"]},
                     start=False)
    reinforcement = job_object(store, store.get_job(job["id"]))["method"]["reinforcement"]
    assert reinforcement["grader"] == method["grader"] and reinforcement["response_format"] == method["response_format"]


def test_tune_creates_grader_option_reads_the_rft_guides_method_object():
    from gradeloop.cli._tune import _grader

    method = read("finetune/rft-security.method.json")
    grader, rest = _grader(DATA / "finetune" / "rft-security.method.json")
    assert grader == method["grader"]
    assert rest == {"response_format": method["response_format"], "hyperparameters": {"reasoning_effort": "medium"}}
    assert _grader(DATA / "graders" / "multi-tool-call.json") == (read("graders/multi-tool-call.json"), {})
