"""The transformers engine: a tiny random llama everywhere, the embedded model where it matters."""

import asyncio

import pytest

from conftest import EXAMPLES, run_cli
from gradeloop import GenerateRequest, InputError, RunOptions, Store, eval_from_dict, get_provider, run_eval, run_object
from gradeloop.models._local import get_engine


def gen(provider, *requests):
    async def go():
        return await asyncio.gather(*(provider.generate(r) for r in requests))
    return asyncio.run(go())


def ask(text, **params):
    return GenerateRequest(messages=[{"role": "user", "content": text}], params=params)


def test_tiny_model_generates_with_usage_and_length_limit(tiny_model_dir):
    provider = get_provider(f"hf/{tiny_model_dir}")
    [result] = gen(provider, ask("hello world", temperature=0, max_completion_tokens=6))
    assert result.usage.completion_tokens <= 6 and result.usage.prompt_tokens > 3
    assert result.finish_reason in ("length", "stop")
    assert result.message["role"] == "assistant" and isinstance(result.output_text, str)
    assert result.response["usage"]["total_tokens"] == result.usage.total_tokens
    assert result.model == f"hf/{tiny_model_dir}"


def test_concurrent_requests_are_batched_and_match_sequential_greedy(tiny_model_dir):
    provider = get_provider(f"hf/{tiny_model_dir}")
    prompts = [ask(t, temperature=0, max_completion_tokens=8) for t in
               ["hello", "the quick brown fox", "one two three four five six", "paris", "billing refund order",
                "what is the capital of france", "yes", "no stop end"]]
    sequential = [gen(provider, p)[0].output_text for p in prompts]
    engine = get_engine(tiny_model_dir)
    before = dict(engine.stats)
    together = [r.output_text for r in gen(provider, *prompts)]
    assert together == sequential  # left padding and masks keep batched greedy decoding exact
    assert engine.stats["prefills"] - before["prefills"] < len(prompts)
    assert engine.stats["max_batch_seen"] > 1


def test_each_row_keeps_its_own_token_budget(tiny_model_dir):
    provider = get_provider(f"hf/{tiny_model_dir}")
    short, long = gen(provider, ask("hello", temperature=0, max_completion_tokens=2),
                      ask("hello", temperature=0, max_completion_tokens=12))
    assert short.usage.completion_tokens <= 2
    if long.finish_reason == "length":
        assert long.usage.completion_tokens == 12
    assert long.output_text.startswith(short.output_text)


def test_seeded_sampling_is_reproducible(tiny_model_dir):
    provider = get_provider(f"hf/{tiny_model_dir}")
    a, b, c = gen(provider, ask("hello", temperature=1.0, seed=11, max_completion_tokens=16),
                  ask("hello", temperature=1.0, seed=11, max_completion_tokens=16),
                  ask("hello", temperature=1.0, seed=12, max_completion_tokens=16))
    assert a.output_text == b.output_text
    assert a.output_text != c.output_text


def test_top_p_narrows_sampling_to_greedy(tiny_model_dir):
    provider = get_provider(f"hf/{tiny_model_dir}")
    greedy, nucleus = gen(provider, ask("fox", temperature=0, max_completion_tokens=8),
                          ask("fox", temperature=1.0, top_p=1e-6, seed=5, max_completion_tokens=8))
    assert nucleus.output_text == greedy.output_text


def test_stop_sequence_truncates(tiny_model_dir):
    provider = get_provider(f"hf/{tiny_model_dir}")
    [full] = gen(provider, ask("hello world", temperature=0, max_completion_tokens=12))
    text = full.output_text
    assert len(text) >= 3
    stop = text[2:4] if text[2:4].strip() else text[1:3]
    [cut] = gen(provider, ask("hello world", temperature=0, max_completion_tokens=12, stop=[stop]))
    assert cut.finish_reason == "stop"
    assert cut.output_text == text[: text.find(stop)]


def test_eval_run_on_a_checkpoint_directory(tiny_model_dir, tmp_path):
    spec = eval_from_dict({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "string_check", "name": "nonempty", "input": "{{ sample.output_text }}",
                              "operation": "ne", "reference": ""}],
        "data_source": {"type": "completions", "source": {"type": "file_content", "content": [
            {"item": {"q": f"question {i}"}} for i in range(6)]},
            "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{ item.q }}"}]},
            "sampling_params": {"temperature": 0, "max_completion_tokens": 4}},
    })
    [run_id] = run_eval(spec, [f"hf/{tiny_model_dir}"])
    run = run_object(Store(), run_id)
    assert run["result_counts"]["total"] == 6 and run["result_counts"]["errored"] == 0
    assert run["per_model_usage"][0]["completion_tokens"] > 0


def test_bad_local_model_names():
    with pytest.raises(InputError, match="not a transformers checkpoint"):
        asyncio.run(get_provider("hf/./no/such/dir").check())
    with pytest.raises(InputError, match="unknown local model"):
        asyncio.run(get_provider("local/llama-70b").check())
    with pytest.raises(InputError, match="provider/model"):
        get_provider("smollm2")
    with pytest.raises(InputError, match="unknown provider"):
        get_provider("nope/x")


@pytest.mark.slow
def test_embedded_model_answers_with_real_text():
    provider = get_provider("local/smollm2")
    [result] = gen(provider, ask("What is the capital of France?", temperature=0, max_completion_tokens=20))
    assert "Paris" in result.output_text
    assert result.finish_reason == "stop" and result.usage.completion_tokens > 2


@pytest.mark.slow
def test_main_job_on_the_embedded_model():
    result = run_cli("eval", "run", str(EXAMPLES / "ticket-triage.yaml"), "--model", "local/smollm2",
                     "--limit", "8", "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    import json

    [run] = json.loads(result.stdout)["data"]
    assert run["status"] == "completed" and run["result_counts"]["total"] == 8
    assert run["result_counts"]["errored"] == 0
    assert run["per_model_usage"][0]["model_name"] == "smollm2" and run["gradeloop"]["model"] == "local/smollm2"
