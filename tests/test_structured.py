"""response_format json on local models: every token is constrained to the schema's grammar.

A tiny random llama writes noise unless constrained, so text that parses and validates here
is the constraint's doing; the embedded model is checked once end to end.
"""

import asyncio
import json

import httpx
import jsonschema
import openai
import pytest
import yaml

from gradeloop import GenerateRequest, InputError, Store, eval_from_dict, run_eval, run_object
from gradeloop.serve import BackgroundServer

from conftest import run_cli

SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["billing", "shipping", "account"]},
        "urgent": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["refund", "late"]}, "maxItems": 3},
    },
    "required": ["label", "urgent", "tags"],
    "additionalProperties": False,
}
BAD_SCHEMA = {"type": "object", "properties": {"a": {"type": "no-such-type"}}}


def json_schema(schema):
    return {"type": "json_schema", "json_schema": {"name": "triage", "schema": schema, "strict": True}}


def ask(text, **params):
    return GenerateRequest(messages=[{"role": "user", "content": text}], params=params)


def test_sampled_text_always_matches_the_schema(engine):
    async def sample():
        requests = [ask("classify: refund please", temperature=1.0, seed=s, max_completion_tokens=120,
                        response_format=json_schema(SCHEMA)) for s in range(12)]
        return await asyncio.gather(*(engine.generate(r) for r in requests))

    outputs = asyncio.run(sample())
    for out in outputs:
        assert out.finish_reason == "stop", out.text
        jsonschema.validate(json.loads(out.text), SCHEMA)
    assert len({out.text for out in outputs}) > 1, "sampling still chooses among what the schema allows"
    plain = asyncio.run(engine.generate(ask("classify: refund please", temperature=1.0, seed=0,
                                            max_completion_tokens=40)))
    with pytest.raises(ValueError):
        json.loads(plain.text)  # the same model unconstrained writes noise


def test_json_object_gives_an_object_or_stops_at_the_limit(engine):
    for seed in range(4):
        out = asyncio.run(engine.generate(ask("anything", temperature=1.0, seed=seed, max_completion_tokens=60,
                                              response_format={"type": "json_object"})))
        assert out.text.startswith("{")
        if out.finish_reason == "stop":
            assert isinstance(json.loads(out.text), dict)
        else:
            assert out.finish_reason == "length" and out.usage.completion_tokens == 60


def test_constrained_and_free_rows_share_a_batch_without_touching_each_other(engine):
    free = ask("the quick brown fox", temperature=0, max_completion_tokens=30)
    alone = asyncio.run(engine.generate(free)).text

    async def together():
        constrained = [engine.generate(ask("hello", temperature=1.0, seed=s, max_completion_tokens=120,
                                           response_format=json_schema(SCHEMA))) for s in range(4)]
        return await asyncio.gather(engine.generate(free), *constrained)

    first, *rest = asyncio.run(together())
    assert first.text == alone
    for out in rest:
        jsonschema.validate(json.loads(out.text), SCHEMA)


def test_a_schema_that_cannot_be_compiled_is_refused(engine):
    from gradeloop.errors import ProviderError

    with pytest.raises(ProviderError, match="no-such-type") as info:
        asyncio.run(engine.generate(ask("x", response_format=json_schema(BAD_SCHEMA))))
    assert info.value.kind == "invalid_response_format"


def test_serve_enforces_the_schema_plain_and_streaming(tiny_model_dir):
    with BackgroundServer([f"hf/{tiny_model_dir}"]) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0)
        model = f"hf/{tiny_model_dir}"
        messages = [{"role": "user", "content": "refund"}]
        plain = client.chat.completions.create(model=model, messages=messages, temperature=1.0, seed=3,
                                               max_tokens=120, response_format=json_schema(SCHEMA))
        jsonschema.validate(json.loads(plain.choices[0].message.content), SCHEMA)
        stream = client.chat.completions.create(model=model, messages=messages, temperature=1.0, seed=3,
                                                max_tokens=120, response_format=json_schema(SCHEMA), stream=True)
        text = "".join(e.choices[0].delta.content or "" for e in stream if e.choices)
        assert text == plain.choices[0].message.content
        resp = httpx.post(f"{srv.url}/chat/completions",
                          json={"model": model, "messages": messages, "response_format": json_schema(BAD_SCHEMA)})
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "response_format"


def triage_eval(schema, rows=4):
    return {
        "name": "structured",
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "python", "name": "valid", "source":
                              "def grade(sample, item):\n"
                              "    data = sample.get('output_json')\n"
                              "    ok = isinstance(data, dict) and data.get('label') in ('billing', 'shipping', 'account')\n"
                              "    return 1.0 if ok else 0.0\n"}],
        "data_source": {"type": "completions",
                        "source": {"type": "file_content", "content": [{"item": {"t": f"ticket {i}"}}
                                                                        for i in range(rows)]},
                        "input_messages": {"type": "template",
                                           "template": [{"role": "user", "content": "{{ item.t }}"}]},
                        "sampling_params": {"temperature": 1.0, "max_completion_tokens": 120,
                                            "response_format": json_schema(schema)}},
    }


def test_an_eval_run_on_a_local_model_gets_json(tiny_model_dir):
    spec = eval_from_dict(triage_eval(SCHEMA))
    [run_id] = run_eval(spec, [f"hf/{tiny_model_dir}"])
    counts = run_object(Store(), run_id)["result_counts"]
    assert counts["passed"] == 4 and counts["errored"] == 0


def test_an_eval_whose_schema_cannot_be_enforced_stops_before_the_run(tiny_model_dir, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(triage_eval(BAD_SCHEMA), sort_keys=False))
    with pytest.raises(InputError) as info:
        run_eval(str(path), [f"hf/{tiny_model_dir}"])
    err = info.value
    assert err.file == str(path) and err.field == "data_source.sampling_params.response_format" and err.line
    assert "no-such-type" in err.message
    result = run_cli("eval", "run", str(path), "--model", f"hf/{tiny_model_dir}")
    assert result.returncode == 2 and "bad.yaml" in result.stderr and "response_format" in result.stderr
    assert Store().list_runs() == []  # nothing was stored


@pytest.mark.slow
def test_the_embedded_model_answers_the_json_triage_example_in_its_schema():
    from conftest import EXAMPLES

    from gradeloop import RunOptions, output_item_objects

    [run_id] = run_eval(str(EXAMPLES / "ticket-triage-json.yaml"), ["local/smollm2"], options=RunOptions(limit=8))
    items = output_item_objects(Store(), run_id)
    assert len(items) == 8
    for item in items:
        answer = json.loads(item["sample"]["output"][0]["content"])
        assert set(answer) == {"label"} and answer["label"] in ("billing", "technical", "account", "shipping")

