"""Local generation speed: ``local/smollm2`` through plain transformers ``generate`` at batch 1,
gradeloop's continuous-batching engine, and llama.cpp when installed.

Workload: 64 chat prompts, exactly 128 new tokens each (end-of-sequence ignored), greedy.
Columns: tokens/s (new tokens over wall time), time to first token p50 (from the moment a
request is submitted; for the engine all 64 are submitted at once, so queueing counts), and
the engine's speed-up over plain batch-1 generation.

The batch-1 baseline and llama.cpp run sequentially over ``--sequential-prompts`` prompts
(default 8: 64 × 128 tokens at ~20 tokens/s would take seven minutes); tokens/s does not depend
on how many prompts are timed. llama.cpp is the optional ``llama-cpp-python`` package, loaded
with the same Q4_1 GGUF file; its row says "not installed" without it.

Targets (issue 5, 2 cores): the engine 5× plain batch-1 or better, and ahead of llama.cpp run
sequentially.

    .venv/bin/python bench/local_generation.py
    .venv/bin/python bench/local_generation.py --prompts 16 --new-tokens 64 --max-batch 64
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

TOPICS = ["a lighthouse", "tax season", "a broken bicycle", "sourdough bread", "the moon landing", "a job interview",
          "rainy Mondays", "a lost cat", "solar panels", "chess openings", "a mountain hike", "coffee",
          "the ocean", "an old library", "city traffic", "learning Spanish"]
TASKS = ["Write a short story about {}.", "Explain {} to a child.", "List five facts about {}.",
         "Write a haiku sequence about {}."]


def prompts(n: int) -> list[list[dict]]:
    """``n`` single-turn chats, varied in topic and task."""
    out = []
    for i in range(n):
        out.append([{"role": "user", "content": TASKS[i % len(TASKS)].format(TOPICS[i % len(TOPICS)])}])
    return out


def bench_hf_batch1(model_dir, chats, new_tokens) -> tuple[float, float]:
    """Plain transformers generate, one prompt at a time: (tokens/s, TTFT p50 s)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    tokens, ttfts, start = 0, [], time.perf_counter()
    for chat in chats:
        ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.generate(**ids, max_new_tokens=1, do_sample=False)  # time to first token
            ttfts.append(time.perf_counter() - t0)
            out = model.generate(**ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        tokens += out.shape[1] - ids["input_ids"].shape[1]
    elapsed = time.perf_counter() - start - sum(ttfts)  # the extra first-token calls are not throughput
    return tokens / elapsed, statistics.median(ttfts)


def bench_engine(model_dir, chats, new_tokens, max_batch) -> tuple[float, float, dict]:
    """gradeloop's engine, all prompts submitted at once: (tokens/s, TTFT p50 s, engine stats)."""
    from gradeloop.models import GenerateRequest
    from gradeloop.models._engine import Engine, load_engine_model

    tokenizer, model = load_engine_model(model_dir)
    engine = Engine(tokenizer, model, max_batch=max_batch, max_batch_tokens=1 << 20)
    params = {"temperature": 0, "max_completion_tokens": new_tokens, "ignore_eos": True}

    async def run() -> list:
        return await asyncio.gather(*(engine.generate(GenerateRequest(messages=c, params=params)) for c in chats))

    asyncio.run(engine.generate(GenerateRequest(messages=chats[0], params={**params, "max_completion_tokens": 2})))
    start = time.perf_counter()
    outputs = asyncio.run(run())
    elapsed = time.perf_counter() - start
    engine.close()
    tokens = sum(o.usage.completion_tokens for o in outputs)
    return tokens / elapsed, statistics.median(o.time_to_first_token for o in outputs), dict(engine.stats)


def bench_llama_cpp(gguf, chats, new_tokens) -> tuple[float, float] | None:
    """llama-cpp-python, one prompt at a time (its server's default), or None when absent."""
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    llm = Llama(model_path=str(gguf), n_ctx=2048, n_threads=os.cpu_count(), verbose=False)
    tokens, ttfts, start = 0, [], time.perf_counter()
    for chat in chats:
        t0, first = time.perf_counter(), None
        stream = llm.create_chat_completion(messages=chat, max_tokens=new_tokens, temperature=0, stream=True)
        for event in stream:
            if first is None and event["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - t0
            tokens += 1 if event["choices"][0]["delta"].get("content") else 0
        ttfts.append(first or 0.0)
    return tokens / (time.perf_counter() - start), statistics.median(ttfts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--sequential-prompts", type=int, default=8)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()

    import torch

    from gradeloop.models._local import smollm2_gguf, smollm2_weights

    model_dir = smollm2_weights()
    chats = prompts(args.prompts)
    print(f"local generation: local/smollm2 (fp32), {args.prompts} prompts x {args.new_tokens} new tokens, greedy; "
          f"cpu_count={os.cpu_count()}, torch threads={torch.get_num_threads()}, torch {torch.__version__}")
    rows = []
    base = None
    if not args.skip_baseline:
        base, ttft = bench_hf_batch1(model_dir, chats[: args.sequential_prompts], args.new_tokens)
        rows.append(("transformers generate, batch 1", base, ttft, f"{args.sequential_prompts} prompts sequentially"))
    rate, ttft, stats = bench_engine(model_dir, chats, args.new_tokens, args.max_batch)
    rows.append((f"gradeloop engine (max_batch {args.max_batch})", rate, ttft,
                 f"{args.prompts} at once; peak batch {stats['max_batch_seen']}"))
    llama = bench_llama_cpp(smollm2_gguf(), chats[: args.sequential_prompts], args.new_tokens)
    if llama:
        rows.append(("llama.cpp (Q4_1), sequential", llama[0], llama[1], f"{args.sequential_prompts} prompts"))
    print(f"{'implementation':<36}{'tokens/s':>10}{'TTFT p50':>10}{'vs batch 1':>12}  notes")
    print("-" * 96)
    for name, tps, ttft, note in rows:
        ratio = f"{tps / base:.1f}x" if base else "-"
        print(f"{name:<36}{tps:>10.1f}{ttft:>9.2f}s{ratio:>12}  {note}")
    if not llama:
        print(f"{'llama.cpp (Q4_1), sequential':<36}{'not installed (pip install llama-cpp-python)':>40}")
    if base:
        verdict = "met" if rate >= 5 * base else "NOT met"
        print(f"target engine >= 5x plain batch 1: {verdict} ({rate / base:.1f}x)")
    if llama:
        print(f"target engine ahead of llama.cpp sequential: {'met' if rate > llama[0] else 'NOT met'} "
              f"({rate:.0f} vs {llama[0]:.0f} tokens/s)")


if __name__ == "__main__":
    main()
