"""The continuous-batching engine on a tiny random llama."""

import asyncio
import threading

import pytest

from gradeloop import GenerateRequest
from gradeloop.models._engine import Engine, EngineOutput, load_engine_model


def ask(text, **params):
    return GenerateRequest(messages=[{"role": "user", "content": text}], params={"temperature": 0, **params})


def test_a_request_joins_the_running_batch_and_matches_running_alone(engine):
    long_request = ask("the quick brown fox", max_completion_tokens=120, ignore_eos=True)
    short_request = ask("one two three", max_completion_tokens=6, ignore_eos=True)
    alone_long = asyncio.run(engine.generate(long_request))
    alone_short = asyncio.run(engine.generate(short_request))

    # The engine thread is held inside the long request's prefill until the short one is queued,
    # so the short one arrives while the long one runs, whatever the machine's speed. Every
    # forward pass records its rows and input width (width 1: a decode step).
    passes, prefilling, queued = [], threading.Event(), threading.Event()

    def hold_and_record(module, args, kwargs):
        prefilling.set()
        queued.wait(60)
        passes.append(tuple(kwargs["input_ids"].shape))

    async def together():
        long_task = asyncio.create_task(engine.generate(long_request))
        assert await asyncio.to_thread(prefilling.wait, 60)
        short_task = asyncio.create_task(engine.generate(short_request))
        await asyncio.sleep(0)  # the short request's task runs up to its queue.put
        queued.set()
        return await short_task, await long_task

    before = engine.stats["joined_running_batch"]
    hook = engine.model.register_forward_pre_hook(hold_and_record, with_kwargs=True)
    try:
        short, long = asyncio.run(together())
    finally:
        queued.set()
        hook.remove()
    assert engine.stats["joined_running_batch"] == before + 1  # the short request joined a running batch
    decode_rows = [rows for rows, width in passes if width == 1]
    # one step of the long request alone, then both rows for the short one's last 5 tokens (its
    # first comes from its prefill), then the long one alone again: it was not done
    assert decode_rows == [1] + [2] * 5 + [1] * 113
    # merging caches (left padding, per-row positions) leaves greedy decoding unchanged
    assert short.text == alone_short.text and long.text == alone_long.text
    assert long.usage.completion_tokens == alone_long.usage.completion_tokens == 120


def test_many_staggered_requests_equal_sequential(engine):
    prompts = [ask(p, max_completion_tokens=n) for p, n in
               [("hello", 5), ("paris", 30), ("billing refund", 12), ("yes no", 50), ("order", 3), ("ten", 20)]]
    sequential = [asyncio.run(engine.generate(p)).text for p in prompts]

    async def staggered():
        tasks = []
        for p in prompts:
            tasks.append(asyncio.create_task(engine.generate(p)))
            await asyncio.sleep(0.01)
        return [(await t).text for t in tasks]

    assert asyncio.run(staggered()) == sequential


def test_stream_yields_the_text_piece_by_piece(engine):
    async def collect():
        pieces, final = [], None
        async for piece in engine.stream(ask("the lazy dog", max_completion_tokens=25)):
            if isinstance(piece, EngineOutput):
                final = piece
            else:
                pieces.append(piece)
        return pieces, final

    pieces, final = asyncio.run(collect())
    assert "".join(pieces) == final.text and len(pieces) > 1
    assert final.time_to_first_token <= final.seconds


def test_streamed_text_never_shows_a_stop_string(engine):
    full = asyncio.run(engine.generate(ask("hello world", max_completion_tokens=20))).text
    stop = full[4:7]
    assert len(stop) == 3

    async def collect():
        return [p async for p in engine.stream(ask("hello world", max_completion_tokens=20, stop=[stop]))]

    out = asyncio.run(collect())
    final = out[-1]
    assert final.finish_reason == "stop" and final.text == full[: full.find(stop)]
    assert "".join(out[:-1]) == final.text


def test_bounded_batch_tokens_hold_requests_until_room(tiny_model_dir):
    tokenizer, model = load_engine_model(tiny_model_dir)
    small = Engine(tokenizer, model, max_batch=8, max_batch_tokens=60)
    try:
        async def run_all():
            return await asyncio.gather(*(small.generate(ask(f"request {i} hello world", max_completion_tokens=10))
                                          for i in range(6)))
        outputs = asyncio.run(run_all())
        assert all(o.usage.completion_tokens > 0 for o in outputs)
        assert small.stats["max_batch_seen"] < 6  # memory cap: not all at once
    finally:
        small.close()


def test_prompt_longer_than_the_budget_is_refused(tiny_model_dir):
    from gradeloop.errors import ProviderError

    tokenizer, model = load_engine_model(tiny_model_dir)
    small = Engine(tokenizer, model, max_batch_tokens=8)
    try:
        with pytest.raises(ProviderError, match="max_batch_tokens"):
            asyncio.run(small.generate(ask("one two three four five six seven eight nine ten")))
    finally:
        small.close()


def test_peft_adapter_directory_is_served_merged(tiny_model_dir, tmp_path):
    peft = pytest.importorskip("peft")
    import torch
    from transformers import AutoModelForCausalLM

    from gradeloop import get_provider

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapter = tmp_path / "adapter"
    model.save_pretrained(str(adapter))  # adapter_config.json names the base model's directory
    merged_dir = tmp_path / "merged"
    model.merge_and_unload().save_pretrained(str(merged_dir))
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(tiny_model_dir)).save_pretrained(str(merged_dir))

    def greedy(name):
        provider = get_provider(name)
        return asyncio.run(provider.generate(ask("hello world", max_completion_tokens=12))).output_text

    with torch.no_grad():
        assert greedy(f"hf/{adapter}") == greedy(f"hf/{merged_dir}")
    assert greedy(f"hf/{adapter}") != greedy(f"hf/{tiny_model_dir}")  # the adapter changed the model

