"""gradeloop serve: the real openai client against the server, plain and streaming."""

import concurrent.futures
import json

import httpx
import openai
import pytest

from gradeloop.serve import BackgroundServer


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    rules = tmp_path_factory.mktemp("rules") / "rules.yaml"
    rules.write_text('- {match: "json", response: "Sure: {\\"a\\": 1} done"}\n- {response: scripted answer}\n')
    with BackgroundServer([f"hf/{tiny_model_dir}", f"scripted/{rules}"]) as srv:
        srv.tiny = f"hf/{tiny_model_dir}"
        srv.scripted = f"scripted/{rules}"
        yield srv


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)


def chat(client, model, text, **kw):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **kw)


def test_models(client, server):
    ids = [m.id for m in client.models.list().data]
    assert ids == [server.tiny, server.scripted]


def test_plain_completion_with_usage(client, server):
    resp = chat(client, server.tiny, "hello world", max_tokens=7, temperature=0)
    choice = resp.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("length", "stop")
    assert resp.usage.completion_tokens <= 7 and resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert resp.model == server.tiny and resp.object == "chat.completion"


def test_streaming_token_by_token_equals_plain(client, server):
    plain = chat(client, server.tiny, "the quick brown fox", max_completion_tokens=20, temperature=0)
    stream = chat(client, server.tiny, "the quick brown fox", max_completion_tokens=20, temperature=0, stream=True,
                  stream_options={"include_usage": True})
    pieces, finish, usage = [], None, None
    for event in stream:
        if event.usage:
            usage = event.usage
        for c in event.choices:
            if c.delta.content:
                pieces.append(c.delta.content)
            if c.finish_reason:
                finish = c.finish_reason
    assert "".join(pieces) == plain.choices[0].message.content
    assert len(pieces) > 1  # token by token, not one block
    assert finish == plain.choices[0].finish_reason
    assert usage.completion_tokens == plain.usage.completion_tokens


def test_concurrent_requests_give_the_same_greedy_text_as_sequential(client, server):
    prompts = ["hello", "paris", "one two three", "billing refund order", "yes", "the lazy dog"]
    sequential = [chat(client, server.tiny, p, max_tokens=15, temperature=0).choices[0].message.content for p in prompts]
    with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(lambda p: chat(client, server.tiny, p, max_tokens=15, temperature=0)
                                 .choices[0].message.content, prompts))
    assert together == sequential


def test_seed_is_reproducible_and_n_gives_several_choices(client, server):
    a = chat(client, server.tiny, "hello", max_tokens=15, temperature=1.0, seed=42)
    b = chat(client, server.tiny, "hello", max_tokens=15, temperature=1.0, seed=42)
    assert a.choices[0].message.content == b.choices[0].message.content
    several = chat(client, server.tiny, "hello", max_tokens=15, temperature=1.0, seed=42, n=3)
    assert [c.index for c in several.choices] == [0, 1, 2]
    assert several.choices[0].message.content == a.choices[0].message.content
    assert len({c.message.content for c in several.choices}) > 1


def test_stop_sequence(client, server):
    full = chat(client, server.tiny, "hello world", max_tokens=20, temperature=0).choices[0].message.content
    stop = full[3:6]
    cut = chat(client, server.tiny, "hello world", max_tokens=20, temperature=0, stop=stop)
    assert cut.choices[0].finish_reason == "stop" and cut.choices[0].message.content == full[: full.find(stop)]


def test_other_providers_are_served_and_json_mode_is_best_effort(client, server):
    resp = chat(client, server.scripted, "give json", response_format={"type": "json_object"})
    assert json.loads(resp.choices[0].message.content) == {"a": 1}
    stream = chat(client, server.scripted, "anything", stream=True)
    assert "".join(e.choices[0].delta.content or "" for e in stream if e.choices) == "scripted answer"


@pytest.mark.parametrize("body,status,param", [
    ({"messages": [{"role": "user", "content": "x"}]}, 400, "model"),
    ({"model": "nope/x", "messages": [{"role": "user", "content": "x"}]}, 404, "model"),
    ({"model": "M", "messages": []}, 400, "messages"),
    ({"model": "M", "messages": [{"role": "wizard", "content": "x"}]}, 400, "messages[0].role"),
    ({"model": "M", "messages": [{"role": "user", "content": "x"}], "temperature": 3}, 400, "temperature"),
    ({"model": "M", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, 400, "max_tokens"),
    ({"model": "M", "messages": [{"role": "user", "content": "x"}], "n": 99}, 400, "n"),
    ({"model": "M", "messages": [{"role": "user", "content": "x"}], "stop": [1]}, 400, "stop"),
    ({"model": "M", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}, 400,
     "response_format"),
])
def test_bad_requests_get_openai_shaped_errors(server, body, status, param):
    body = {**body, "model": server.tiny} if body.get("model") == "M" else body
    resp = httpx.post(f"{server.url}/chat/completions", json=body)
    assert resp.status_code == status
    error = resp.json()["error"]
    assert error["param"] == param and error["message"] and error["type"]


def test_malformed_json_body_and_the_sdk_error(server, client):
    resp = httpx.post(f"{server.url}/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and "not valid JSON" in resp.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError):
        chat(client, server.tiny, "x", temperature=5)


def test_api_key(tiny_model_dir):
    with BackgroundServer([f"hf/{tiny_model_dir}"], api_key="test-key-123") as srv:
        denied = openai.OpenAI(base_url=srv.url, api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            denied.models.list()
        allowed = openai.OpenAI(base_url=srv.url, api_key="test-key-123", max_retries=0)
        assert allowed.models.list().data[0].id == f"hf/{tiny_model_dir}"


def test_eval_run_against_the_server(server, tmp_path):
    from gradeloop import RunOptions, Store, eval_from_dict, run_eval, run_object

    spec = eval_from_dict({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "string_check", "name": "c", "input": "{{ sample.output_text }}",
                              "operation": "eq", "reference": "scripted answer"}],
        "data_source": {"type": "completions", "source": {"type": "file_content", "content": [{"item": {}}] * 3},
                        "input_messages": {"type": "template", "template": [{"role": "user", "content": "hi"}]}},
    })
    [run_id] = run_eval(spec, [f"openai/{server.scripted}"], options=RunOptions(base_url=server.url))
    assert run_object(Store(), run_id)["result_counts"]["passed"] == 3


def test_cli_serve(tmp_path):
    import socket
    import subprocess
    import sys

    from conftest import ROOT, run_cli

    bad = run_cli("serve", "--model", "hf/./no/such/checkpoint")
    assert bad.returncode == 2 and "not a transformers checkpoint" in bad.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "gradeloop", "serve", "--model", "scripted/echo", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # ready when uvicorn says it listens; end of stream means the server exited instead
        seen = []
        while not seen or "Uvicorn running on" not in seen[-1]:
            line = proc.stderr.readline()
            assert line, "".join(seen)
            seen.append(line)
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()
        assert models["data"][0]["id"] == "scripted/echo"
        reply = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x").chat.completions.create(
            model="scripted/echo", messages=[{"role": "user", "content": "ping"}])
        assert reply.choices[0].message.content == "ping"
    finally:
        proc.terminate()
        proc.wait(10)
