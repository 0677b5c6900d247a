"""Adaptive concurrency: fewer requests in flight when an endpoint answers 429, more as it recovers."""

import asyncio

import pytest

from gradeloop import RetryPolicy, RunOptions, Store, eval_from_dict, run_eval, run_object
from gradeloop.runner._limit import AdaptiveLimit
from gradeloop.testing import Faults, FakeOpenAI


def test_the_limit_halves_once_per_wave_of_rate_limits():
    async def scenario():
        limit = AdaptiveLimit(32)
        epochs = [await limit.acquire() for _ in range(32)]
        for epoch in epochs:  # 32 answers of one wave all say 429
            limit.release(epoch, ok=False, congested=True)
        assert (limit.limit, limit.congested, limit.decreases) == (16, 32, 1)
        epochs = [await limit.acquire() for _ in range(16)]
        limit.release(epochs[0], ok=False, congested=True)
        limit.release(epochs[1], ok=False, congested=True)
        assert limit.limit == 8 and limit.lowest == 8
        for epoch in epochs[2:]:
            limit.release(epoch, ok=True)
        return limit

    limit = asyncio.run(scenario())
    assert limit.in_flight == 0


def test_the_limit_grows_by_one_per_limit_successes_up_to_the_ceiling_and_never_below_one():
    async def scenario():
        limit = AdaptiveLimit(3)
        for _ in range(4):
            limit.release(await limit.acquire(), ok=False, congested=True)
        assert limit.limit == 1 and limit.lowest == 1
        seen = []
        for _ in range(20):
            limit.release(await limit.acquire(), ok=True)
            seen.append(limit.limit)
        return seen

    seen = asyncio.run(scenario())
    assert seen[:6] == [2, 2, 3, 3, 3, 3] and max(seen) == 3


def test_a_fixed_limit_stays_put_and_waiters_get_freed_slots():
    async def scenario():
        limit = AdaptiveLimit(2, adaptive=False)
        a, b = await limit.acquire(), await limit.acquire()
        third = asyncio.ensure_future(limit.acquire())
        await asyncio.sleep(0.01)
        assert not third.done()
        cancelled = asyncio.ensure_future(limit.acquire())
        await asyncio.sleep(0.01)
        cancelled.cancel()
        limit.release(a, ok=False, congested=True)
        await asyncio.sleep(0.01)
        assert third.done() and limit.limit == 2 and limit.in_flight == 2
        limit.release(b, ok=True)
        limit.release(third.result(), ok=True)
        assert limit.in_flight == 0
        assert await asyncio.wait_for(limit.acquire(), 1) == 0  # the cancelled waiter took nothing

    asyncio.run(scenario())


def spec(rows):
    return eval_from_dict({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "string_check", "name": "echo", "input": "{{ sample.output_text }}",
                              "operation": "eq", "reference": "{{ item.q }}"}],
        "data_source": {"type": "completions",
                        "source": {"type": "file_content", "content": [{"item": {"q": f"q{i}"}} for i in range(rows)]},
                        "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{ item.q }}"}]}},
    })


ATTEMPTS = 6


def run_against(*, adaptive, hold_until_refused):
    """8 items, 8 in flight at first, against room for 4 that stays full (the first 4 requests are
    held) until ``hold_until_refused`` requests were refused with 429 (Retry-After 0.01 s)."""
    retry = RetryPolicy(max_attempts=ATTEMPTS, base_delay=0.01, max_delay=0.05, max_total_wait=30)
    with FakeOpenAI(capacity=4, hold_until_refused=hold_until_refused, faults=Faults(retry_after=0.01)) as server:
        options = RunOptions(base_url=server.url, concurrency=8, adaptive_concurrency=adaptive, retry=retry,
                             use_cache=False, timeout=30)
        [run_id] = run_eval(spec(8), ["openai/fake"], options=options)
        return run_object(Store(), run_id)["result_counts"], server.over_capacity


def test_a_rate_limited_endpoint_gets_fewer_requests_and_every_item_completes(capsys):
    # Fixed at 8: the 4 refused requests retry into a server that is still full until each has
    # spent its ATTEMPTS, so those 4 items fail and the 4 held ones pass.
    fixed_counts, fixed_refused = run_against(adaptive=False, hold_until_refused=4 * ATTEMPTS)
    assert "concurrency fixed at 8" in capsys.readouterr().err
    assert (fixed_counts["passed"], fixed_counts["errored"], fixed_refused) == (4, 4, 4 * ATTEMPTS)
    # Adaptive: the first wave of 429s halves the limit to 4, the capacity, so the refused items
    # wait for a slot instead of retrying into a full server, and every item passes. A slot frees
    # only after the server has counted its answer out, so no request is refused twice.
    counts, refused = run_against(adaptive=True, hold_until_refused=4)
    assert "concurrency went down to 4 " in capsys.readouterr().err
    assert (counts["passed"], counts["errored"], refused) == (8, 0, 4)


def test_the_choice_is_kept_for_a_resume():
    options = RunOptions(concurrency=8, adaptive_concurrency=False)
    again = RunOptions.from_config(options.to_config())
    assert again.adaptive_concurrency is False and again.concurrency == 8


def test_the_cli_offers_a_fixed_concurrency():
    from conftest import run_cli

    result = run_cli("eval", "run", "--help", env={"COLUMNS": "200"})
    assert "--fixed-concurrency" in result.stdout


def test_the_fake_servers_latency_spread_draws_waits_within_its_bounds_and_leaves_faults_alone():
    fixed = FakeOpenAI(latency=0.05)
    assert {fixed.wait_seconds() for _ in range(5)} == {0.05}
    spread = FakeOpenAI(latency=0.05, latency_spread=0.5, faults=Faults(rate=0.5, seed=3))
    waits = [spread.wait_seconds() for _ in range(400)]
    assert all(0.025 <= w <= 0.075 for w in waits)
    assert min(waits) < 0.03 and max(waits) > 0.07  # spread over the whole range, not bunched
    again = FakeOpenAI(latency=0.05, latency_spread=0.5, faults=Faults(rate=0.5, seed=3))
    assert [again.wait_seconds() for _ in range(400)] == waits  # the same draws for the same seed
    # the waits have their own draws: the faults a seed gives are the same with or without a spread
    plain = FakeOpenAI(latency=0.05, faults=Faults(rate=0.5, seed=3))
    assert [spread._draw_fault() for _ in range(20)] == [plain._draw_fault() for _ in range(20)]
    with pytest.raises(ValueError, match="from 0 to 1"):
        FakeOpenAI(latency=0.05, latency_spread=1.5)
