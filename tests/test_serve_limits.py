"""gradeloop serve's limits: request bodies over --max-request-mb get a 413 in OpenAI's error shape
(without being read whole), and max_tokens beyond the model's context a 400, as OpenAI answers."""

import asyncio
import json
import socket
import subprocess
import sys

import httpx
import pytest

from gradeloop.serve import BackgroundServer
from gradeloop.serve._app import MAX_REQUEST_BYTES, RequestError, read_body

CONTEXT = 512  # the tiny llama's max_position_embeddings (conftest.build_tiny_model)


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    with BackgroundServer([f"hf/{tiny_model_dir}", "scripted/echo"]) as srv:
        srv.tiny = f"hf/{tiny_model_dir}"
        yield srv


def body_of(model: str, size: int) -> bytes:
    """A chat request of about ``size`` bytes (the padding is in the message)."""
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "x" * size}]}).encode()


def assert_openai_error(resp: httpx.Response, status: int, param: str | None, code: str) -> dict:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["code"] == code
    return error


def test_default_limit_is_16_mb_and_the_server_stays_up(server):
    assert MAX_REQUEST_BYTES == 16 * 2**20
    with httpx.Client(timeout=60) as client:
        resp = client.post(f"{server.url}/chat/completions", content=body_of("scripted/echo", 17 * 2**20),
                           headers={"content-type": "application/json"})
        error = assert_openai_error(resp, 413, None, "request_too_large")
        assert "16 MB" in error["message"] and "--max-request-mb" in error["message"]
        # just under the limit is served, and so is the next small request
        ok = client.post(f"{server.url}/chat/completions", content=body_of("scripted/echo", 15 * 2**20),
                         headers={"content-type": "application/json"})
        assert ok.status_code == 200 and len(ok.json()["choices"][0]["message"]["content"]) == 15 * 2**20
        small = client.post(f"{server.url}/chat/completions",
                            json={"model": "scripted/echo", "messages": [{"role": "user", "content": "ping"}]})
        assert small.json()["choices"][0]["message"]["content"] == "ping"


def test_a_chunked_body_over_the_limit_gets_413(tiny_model_dir):
    def chunks():  # no Content-Length: httpx sends Transfer-Encoding: chunked
        body = body_of("scripted/echo", 3 * 2**20)
        for i in range(0, len(body), 2**16):
            yield body[i:i + 2**16]

    with BackgroundServer(["scripted/echo"], max_request_bytes=2**20) as srv, httpx.Client(timeout=60) as client:
        resp = client.post(f"{srv.url}/chat/completions", content=chunks(), headers={"content-type": "application/json"})
        assert "content-length" not in resp.request.headers
        error = assert_openai_error(resp, 413, None, "request_too_large")
        assert "1 MB" in error["message"]
        after = client.post(f"{srv.url}/chat/completions",
                            json={"model": "scripted/echo", "messages": [{"role": "user", "content": "still here"}]})
        assert after.json()["choices"][0]["message"]["content"] == "still here"


def test_the_body_is_counted_while_it_is_read_not_after():
    from starlette.requests import Request

    pulled = []

    async def receive():  # an endless chunked body of 64 KiB pieces
        pulled.append(1)
        return {"type": "http.request", "body": b"x" * 2**16, "more_body": True}

    request = Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)
    with pytest.raises(RequestError) as info:
        asyncio.run(read_body(request, 2**20))
    assert info.value.status == 413 and len(pulled) == 17  # 16 pieces fit in 1 MiB; the 17th is one too many


def prompt_tokens(server, text: str) -> int:
    resp = httpx.post(f"{server.url}/chat/completions", timeout=60,
                      json={"model": server.tiny, "messages": [{"role": "user", "content": text}], "max_tokens": 1})
    return resp.json()["usage"]["prompt_tokens"]


@pytest.mark.parametrize("key", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_beyond_the_context_is_a_400(server, key, stream):
    prompt = prompt_tokens(server, "hello world")
    body = {"model": server.tiny, "messages": [{"role": "user", "content": "hello world"}], "stream": stream,
            key: CONTEXT - prompt + 1}
    resp = httpx.post(f"{server.url}/chat/completions", json=body, timeout=60)
    error = assert_openai_error(resp, 400, key, "context_length_exceeded")
    assert f"maximum context length is {CONTEXT} tokens" in error["message"]
    assert f"({prompt} in the messages, {CONTEXT - prompt + 1} in the completion)" in error["message"]


def test_max_tokens_that_fill_the_context_exactly_are_served(server):
    prompt = prompt_tokens(server, "hello world")
    body = {"model": server.tiny, "messages": [{"role": "user", "content": "hello world"}],
            "max_tokens": CONTEXT - prompt}
    fits = httpx.post(f"{server.url}/chat/completions", json=body, timeout=120)
    assert fits.status_code == 200, fits.text
    assert fits.json()["usage"]["completion_tokens"] <= CONTEXT - prompt


def test_a_prompt_longer_than_the_context_is_a_400_before_any_stream(server):
    body = {"model": server.tiny, "messages": [{"role": "user", "content": "the lazy dog " * 300}], "stream": True}
    resp = httpx.post(f"{server.url}/chat/completions", json=body, timeout=60)
    assert_openai_error(resp, 400, "messages", "context_length_exceeded")


def test_cli_max_request_mb(tmp_path):
    from conftest import ROOT

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "gradeloop", "serve", "--model", "scripted/echo", "--port",
                             str(port), "--max-request-mb", "0.5"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        while not seen or "Uvicorn running on" not in seen[-1]:
            line = proc.stderr.readline()
            assert line, "".join(seen)
            seen.append(line)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        big = httpx.post(url, content=body_of("scripted/echo", 2**19 + 1), timeout=60,
                         headers={"content-type": "application/json"})
        assert big.status_code == 413 and "0.5 MB" in big.json()["error"]["message"]
        small = httpx.post(url, content=body_of("scripted/echo", 2**18), timeout=60,
                           headers={"content-type": "application/json"})
        assert small.status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)
