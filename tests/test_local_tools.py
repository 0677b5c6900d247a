"""Tools on local models: tools / tool_choice / parallel_tool_calls in, OpenAI-shaped tool_calls out.

A tiny random llama writes noise unless constrained, so calls that parse and validate against
their tool's schema here are the grammar's doing. One model has a chat template without a tool
format (the generic format); another has a template of the Hermes kind (tools rendered by the
template, calls in <tool_call> blocks), written here.
"""

import asyncio
import json

import httpx
import jsonschema
import openai
import pytest

from gradeloop import GenerateRequest, InputError, Store, eval_from_dict, run_eval
from gradeloop.models import get_provider
from gradeloop.serve import BackgroundServer

from conftest import build_tiny_model

WEATHER = {"type": "object", "properties": {"city": {"type": "string", "enum": ["paris", "rome", "oslo"]},
                                            "days": {"type": "integer", "minimum": 1, "maximum": 7}},
           "required": ["city", "days"], "additionalProperties": False}
CLOSE = {"type": "object", "properties": {"ticket": {"type": "integer", "minimum": 0, "maximum": 99}},
         "required": ["ticket"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "forecast", "parameters": WEATHER}},
         {"type": "function", "function": {"name": "close_ticket", "parameters": CLOSE}}]
SCHEMAS = {"get_weather": WEATHER, "close_ticket": CLOSE}
ASK = [{"role": "user", "content": "weather in paris?"}]
HISTORY = [{"role": "user", "content": "weather in paris?"},
           {"role": "assistant", "content": None, "tool_calls": [
               {"id": "call_a1", "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "paris", "days": 2}'}}]},
           {"role": "tool", "tool_call_id": "call_a1", "content": '{"sky": "sunny-today"}'},
           {"role": "user", "content": "and close ticket 7"}]

HERMES_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}\n"
    "{% endif %}Functions: <tools>{% for t in tools %}{{ t['function'] | tojson }}{% endfor %}</tools>\n"
    "Call one as <tool_call>\n{\"name\": ..., \"arguments\": ...}\n</tool_call><|im_end|>\n{% endif %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' and tools %}"
    "{% elif m['role'] == 'assistant' and m.get('tool_calls') %}<|im_start|>assistant\n"
    "{% for c in m['tool_calls'] %}<tool_call>\n"
    "{{ {'name': c['function']['name'], 'arguments': c['function']['arguments']} | tojson }}\n</tool_call>"
    "{% endfor %}<|im_end|>\n"
    "{% elif m['role'] == 'tool' %}<|im_start|>user\n<tool_response>{{ m['content'] }}</tool_response><|im_end|>\n"
    "{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _long_context(path):
    config = json.loads((path / "config.json").read_text())
    config["max_position_embeddings"] = 4096  # rotary positions: a tool list needs more than 512
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def generic_dir(tmp_path_factory):
    return _long_context(build_tiny_model(tmp_path_factory.mktemp("tiny-generic")))


@pytest.fixture(scope="module")
def hermes_dir(tmp_path_factory):
    path = _long_context(build_tiny_model(tmp_path_factory.mktemp("tiny-hermes"), seed=1))
    config = json.loads((path / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    (path / "chat_template.jinja").write_text(HERMES_TEMPLATE)
    return path


@pytest.fixture(scope="module")
def generic(generic_dir):
    return get_provider(f"hf/{generic_dir}")


@pytest.fixture(scope="module")
def hermes(hermes_dir):
    return get_provider(f"hf/{hermes_dir}")


def generate(provider, messages=ASK, **params):
    params.setdefault("temperature", 1.0)
    params.setdefault("max_completion_tokens", 120)
    return asyncio.run(provider.generate(GenerateRequest(messages=messages, params={"tools": TOOLS, **params})))


def token_id(provider, text):
    engine = asyncio.run(provider.engine())
    [token] = engine.tokenizer(text, add_special_tokens=False)["input_ids"]
    return token


def assert_valid_calls(result, names=tuple(SCHEMAS)):
    """OpenAI's shape, every call's arguments valid against its tool's schema; returns the calls."""
    assert result.finish_reason == "tool_calls", result.message
    calls = result.message["tool_calls"]
    assert calls and result.validate()
    for call in calls:
        assert call["id"].startswith("call_") and call["type"] == "function"
        assert call["function"]["name"] in names and isinstance(call["function"]["arguments"], str)
        jsonschema.validate(json.loads(call["function"]["arguments"]), SCHEMAS[call["function"]["name"]])
    return calls


def prompt_text(provider, messages, **params):
    engine = asyncio.run(provider.engine())
    return engine.tokenizer.decode(engine.prompt_ids(GenerateRequest(messages=messages, params=params)))


def test_required_calls_parse_and_match_the_tool_schema(generic):
    assert generic.supports_tools
    for seed in range(6):
        calls = assert_valid_calls(generate(generic, tool_choice="required", parallel_tool_calls=False, seed=seed))
        assert len(calls) == 1
    plain = generate(generic, tools=[], seed=0)  # the same model without tools writes noise
    assert "tool_calls" not in plain.message
    with pytest.raises(ValueError):
        json.loads(plain.output_text)


def test_a_named_function_is_the_only_one_called(generic):
    for seed in range(4):
        calls = assert_valid_calls(generate(generic, seed=seed, parallel_tool_calls=False, tool_choice={
            "type": "function", "function": {"name": "close_ticket"}}), names=("close_ticket",))
        assert [c["function"]["name"] for c in calls] == ["close_ticket"]


def test_auto_lets_the_model_choose_and_a_chosen_call_parses(generic):
    brace = token_id(generic, "{")
    for seed in range(4):
        text = generate(generic, seed=seed, max_completion_tokens=30)  # tool_choice defaults to auto
        assert "tool_calls" not in text.message and not text.output_text.startswith("{")
        call = generate(generic, seed=seed, parallel_tool_calls=False, logit_bias={str(brace): 100})
        assert len(assert_valid_calls(call)) == 1  # the first token chose the call: the rest had to follow


def test_none_offers_no_tool_and_answers_in_text(generic):
    out = generate(generic, tool_choice="none", seed=0, max_completion_tokens=20, logit_bias={
        str(token_id(generic, "{")): 100})
    assert "tool_calls" not in out.message and out.output_text.startswith("{")  # nothing parsed as a call
    assert prompt_text(generic, ASK, tools=TOOLS, tool_choice="none") == prompt_text(generic, ASK)


def test_parallel_calls_follow_the_grammar(generic):
    from gradeloop.models._tools import MAX_PARALLEL_CALLS, read_tool_calls, tool_grammar, tool_plan

    engine = asyncio.run(generic.engine())
    two = ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "rome", "days": 3}}, '
           '{"name": "close_ticket", "arguments": {"ticket": 7}}]}')

    def accepts(text, fmt="generic", **params):
        constraint = engine.constraints.new_grammar(tool_grammar(tool_plan({"tools": TOOLS, **params}), fmt))
        ids = engine.tokenizer(text, add_special_tokens=False)["input_ids"]
        return all(constraint.consume(t) for t in ids) and constraint.matcher.is_accepting()

    assert accepts(two) and accepts(two, tool_choice="required")
    assert not accepts(two, parallel_tool_calls=False)
    assert not accepts(two.replace('"days": 3', '"days": 9'))  # outside the schema: no path through the grammar
    assert not accepts(two, tool_choice={"type": "function", "function": {"name": "get_weather"}})
    one = '{"name": "close_ticket", "arguments": {"ticket": 1}}'
    assert accepts('{"tool_calls": [' + ", ".join([one] * MAX_PARALLEL_CALLS) + "]}")
    assert not accepts('{"tool_calls": [' + ", ".join([one] * (MAX_PARALLEL_CALLS + 1)) + "]}")
    blocks = [f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in json.loads(two)["tool_calls"]]
    assert accepts("\n".join(blocks), "hermes") and not accepts("\n".join(blocks), "hermes", parallel_tool_calls=False)
    assert accepts(blocks[0], "hermes", parallel_tool_calls=False)
    assert [c["function"]["name"] for c in read_tool_calls("\n".join(blocks), "hermes")[1]] == [
        "get_weather", "close_ticket"]
    content, calls = read_tool_calls(two, "generic")
    assert content is None and [json.loads(c["function"]["arguments"]) for c in calls] == [
        {"city": "rome", "days": 3}, {"ticket": 7}]
    assert len({c["id"] for c in calls}) == 2


def test_tool_calls_and_results_in_the_input_are_rendered(generic):
    text = prompt_text(generic, HISTORY, tools=TOOLS)
    assert '{"name": "get_weather", "description": "forecast", "parameters": ' in text  # the tool section
    assert '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "paris", "days": 2}}]}' in text
    assert 'Tool results:\nget_weather (call_a1): {"sky": "sunny-today"}' in text
    assert text.index("sunny-today") < text.index("and close ticket 7")
    assert_valid_calls(generate(generic, HISTORY, tool_choice="required", parallel_tool_calls=False, seed=2))
    two = [HISTORY[0], {"role": "assistant", "content": "Checking both.", "tool_calls": [
        HISTORY[1]["tool_calls"][0], {"id": "call_b2", "type": "function",
                                      "function": {"name": "close_ticket", "arguments": '{"ticket": 7}'}}]},
        HISTORY[2], {"role": "tool", "tool_call_id": "call_b2", "content": "closed"}]
    assert ('Checking both.\n{"tool_calls": [{"name": "get_weather", "arguments": {"city": "paris", "days": 2}}, '
            '{"name": "close_ticket", "arguments": {"ticket": 7}}]}') in prompt_text(generic, two, tools=TOOLS)
    assert ('<|im_start|>user\nTool results:\nget_weather (call_a1): {"sky": "sunny-today"}\n'
            'close_ticket (call_b2): closed<|im_end|>') in prompt_text(generic, two, tools=TOOLS)
    without_tools = prompt_text(generic, HISTORY)  # history is rendered even when no tool is offered now
    assert "Tool results:" in without_tools and "You can call" not in without_tools


def test_a_template_with_a_tool_format_renders_tools_and_calls_in_it(hermes):
    engine = asyncio.run(hermes.engine())
    assert engine.tool_format == "hermes"
    text = prompt_text(hermes, HISTORY, tools=TOOLS)
    assert "<tools>" in text and '"name": "close_ticket"' in text and "You can call" not in text
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "paris", "days": 2}}\n</tool_call>' in text
    assert '<tool_response>{"sky": "sunny-today"}</tool_response>' in text
    for seed in range(3):
        out = generate(hermes, HISTORY, tool_choice="required", parallel_tool_calls=False, seed=seed)
        assert len(assert_valid_calls(out)) == 1 and out.message["content"] is None
    chosen = generate(hermes, seed=0, parallel_tool_calls=False, logit_bias={str(token_id(hermes, "<")): 100})
    assert_valid_calls(chosen)
    assert "tool_calls" not in generate(hermes, seed=0, max_completion_tokens=20).message


def test_bad_tools_are_refused_naming_the_field(generic, generic_dir, tmp_path):
    bad = [{"type": "function", "function": {"name": "f", "parameters": {"type": "no-such-type"}}}]
    with pytest.raises(InputError) as info:
        generic.check_params({"tools": bad})
    assert info.value.field == "tools" and "no-such-type" in info.value.message
    with pytest.raises(InputError) as info:
        generic.check_params({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}})
    assert info.value.field == "tool_choice"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(tool_eval(bad), indent=1))
    with pytest.raises(InputError) as info:
        run_eval(str(path), [f"hf/{generic_dir}"])
    assert info.value.file == str(path) and info.value.field == "data_source.sampling_params.tools"
    assert info.value.line and Store().list_runs() == []


def tool_eval(tools, rows=2):
    return {
        "name": "tools-local",
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "python", "name": "shape", "source":
                              "def grade(sample, item):\n"
                              "    calls = sample.get('output_tools') or []\n"
                              "    text = sample.get('output_text') or ''\n"
                              "    ok = all(c['function']['name'] == 'get_weather' for c in calls)\n"
                              "    return 1.0 if ok and (calls or not text.startswith('{')) else 0.0\n"}],
        "data_source": {"type": "completions",
                        "source": {"type": "file_content", "content": [{"item": {"t": f"weather {i}"}}
                                                                        for i in range(rows)]},
                        "input_messages": {"type": "template",
                                           "template": [{"role": "user", "content": "{{ item.t }}"}]},
                        # seeded: unseeded, a random model's call is now and then cut off at 30 tokens
                        "sampling_params": {"temperature": 1.0, "max_completion_tokens": 30, "seed": 7,
                                            "tools": tools}},
    }


def test_an_eval_with_tools_runs_on_a_local_model_without_the_old_warning(generic_dir, capsys):
    from gradeloop import run_object

    [run_id] = run_eval(eval_from_dict(tool_eval(TOOLS[:1])), [f"hf/{generic_dir}"])
    assert "cannot call tools" not in capsys.readouterr().err
    counts = run_object(Store(), run_id)["result_counts"]
    assert counts["passed"] == 2 and counts["errored"] == 0


SCRIPTED_CALL = {"id": "call_s1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "rome", "days": 1}'}}


@pytest.fixture(scope="module")
def served(generic_dir, tmp_path_factory):
    rules = tmp_path_factory.mktemp("rules") / "rules.json"
    rules.write_text(json.dumps([{"match": "weather", "tool_calls": [SCRIPTED_CALL], "finish_reason": "tool_calls"}]))
    with BackgroundServer([f"hf/{generic_dir}", f"scripted/{rules}"]) as srv:
        srv.model, srv.scripted = f"hf/{generic_dir}", f"scripted/{rules}"
        srv.client = openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0)
        yield srv


def test_serve_returns_tool_calls_plain_and_streaming(served, generic):
    kw = {"model": served.model, "messages": HISTORY, "tools": TOOLS, "tool_choice": "required",
          "temperature": 1.0, "seed": 4, "max_tokens": 120, "parallel_tool_calls": False}
    plain = served.client.chat.completions.create(**kw)
    choice = plain.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])
    calls, finish, content = {}, None, ""
    for event in served.client.chat.completions.create(**kw, stream=True):
        for c in event.choices:
            content += c.delta.content or ""
            finish = c.finish_reason or finish
            for d in c.delta.tool_calls or []:
                entry = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
                entry["id"] = d.id or entry["id"]
                entry["name"] += (d.function.name or "") if d.function else ""
                entry["arguments"] += (d.function.arguments or "") if d.function else ""
    assert finish == "tool_calls" and content == ""
    assert [(e["name"], e["arguments"]) for e in calls.values()] == [(call.function.name, call.function.arguments)]
    assert calls[0]["id"].startswith("call_")


def test_serve_streams_text_when_auto_answers_in_text(served, generic):
    kw = {"model": served.model, "messages": ASK, "tools": TOOLS, "temperature": 0, "max_tokens": 15}
    plain = served.client.chat.completions.create(**kw)
    assert plain.choices[0].message.tool_calls is None and plain.choices[0].finish_reason == "length"
    pieces = [e.choices[0].delta.content for e in served.client.chat.completions.create(**kw, stream=True)
              if e.choices and e.choices[0].delta.content]
    assert "".join(pieces) == plain.choices[0].message.content and len(pieces) > 1
    bias = {str(token_id(generic, "{")): 100}
    streamed = served.client.chat.completions.create(**{**kw, "max_tokens": 120}, stream=True, logit_bias=bias,
                                                     parallel_tool_calls=False)
    deltas = [d for e in streamed for c in e.choices for d in c.delta.tool_calls or []]
    assert deltas and deltas[0].function.name in SCHEMAS  # auto chose a call: it streams as tool_calls


def test_serve_passes_other_providers_tool_calls_plain_and_streaming(served):
    kw = {"model": served.scripted, "messages": ASK, "tools": TOOLS}
    [call] = served.client.chat.completions.create(**kw).choices[0].message.tool_calls
    assert call.model_dump() == SCRIPTED_CALL
    events = list(served.client.chat.completions.create(**kw, stream=True))
    deltas = [d for e in events for c in e.choices for d in c.delta.tool_calls or []]
    assert deltas[0].id == "call_s1" and deltas[0].function.name == "get_weather"
    assert "".join(d.function.arguments for d in deltas) == SCRIPTED_CALL["function"]["arguments"]
    assert [c.finish_reason for e in events for c in e.choices if c.finish_reason] == ["tool_calls"]


def test_serve_refuses_bad_tools_with_400(served):
    url = f"{served.url}/chat/completions"
    bad = [{"type": "function", "function": {"name": "f", "parameters": {"type": "no-such-type"}}}]
    for body, param in (({"tools": bad}, "tools"), ({"tools": [{"type": "web_search"}]}, "tools"),
                        ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice"),
                        ({"tools": TOOLS, "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
                        ({"logit_bias": {"x": 1}}, "logit_bias")):
        resp = httpx.post(url, json={"model": served.model, "messages": ASK, **body})
        assert resp.status_code == 400 and resp.json()["error"]["param"] == param, resp.text


@pytest.mark.slow
def test_the_embedded_model_makes_a_call_that_parses():
    provider = get_provider("local/smollm2")
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Get the weather forecast for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}},
                       "required": ["city"], "additionalProperties": False}}}]
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]

    def ask(**params):
        return asyncio.run(provider.generate(GenerateRequest(messages, {
            "tools": tools, "tool_choice": "required", "temperature": 0, "max_completion_tokens": 200, **params})))

    single = ask(parallel_tool_calls=False)
    [call] = single.message["tool_calls"]
    assert single.finish_reason == "tool_calls" and call["function"]["name"] == "get_weather"
    assert isinstance(json.loads(call["function"]["arguments"])["city"], str)
    several = ask()  # the 135M model repeats its call; the cap on parallel calls keeps the reply parseable
    assert several.finish_reason == "tool_calls"
    assert all(json.loads(c["function"]["arguments"]).get("city") for c in several.message["tool_calls"])


def test_the_tools_count_toward_the_context_window_before_a_run(tiny_model_dir, tmp_path):
    long_tool = [{"type": "function", "function": {"name": "lookup", "description": "lookup " * 600,
                                                   "parameters": {"type": "object"}}}]
    path = tmp_path / "long.json"
    path.write_text(json.dumps(tool_eval(long_tool, rows=1), indent=1))
    with pytest.raises(InputError) as info:  # the item alone fits the tiny model's 512 tokens
        run_eval(str(path), [f"hf/{tiny_model_dir}"])
    assert info.value.field == "messages" and "context window is 512" in info.value.message
    assert info.value.file.endswith("long.json") and Store().list_runs() == []
