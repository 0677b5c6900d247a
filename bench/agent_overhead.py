"""Agent runner overhead: what gradeloop's episode loop costs per turn, against a bare SDK loop.

What it measures
    ``--episodes`` agent episodes (default 640) of 5 turns each (4 turns that call one tool,
    then an answer) at ``--concurrency`` (default 64) against gradeloop's fake OpenAI-compatible
    server, once per server latency in ``--latencies`` (default 0 and 50 ms), through:

    openai SDK         a bare loop: ``openai.AsyncOpenAI().chat.completions.create`` with the
                       tools; each tool call answered from a dict, the assistant message and the
                       tool messages appended; N workers pulling episodes from one iterator
    gradeloop canned   ``gradeloop.run_eval_async`` on an inline eval with an ``agent:`` block
                       whose tool is canned; model ``openai/fake``, cache off, a fresh SQLite
                       store, so storing every turn, the calls and the episode is in the timer
    gradeloop python   the same with the tool a python function run in the sandbox (a fresh
                       fork per call) on a per-episode state

    episodes/s is episodes / wall time of the measured call (imports and client set-up
    outside the timer). ms/turn is wall time per turn per worker slot (wall × concurrency /
    turns); overhead/turn is that minus the SDK loop's at the same latency. The server runs in
    its own process and every measurement in a fresh child process.

Run it from the repository root:

    .venv/bin/python bench/agent_overhead.py
    .venv/bin/python bench/agent_overhead.py --episodes 320 --latencies 50

``--serve PORT`` and ``--one KIND LATENCY_MS URL`` are the child modes the parent uses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

TURNS = 5
KINDS = ("openai", "canned", "python")
LABELS = {"openai": "openai SDK loop", "canned": "gradeloop (canned tool)", "python": "gradeloop (python tool)"}
TOOL = {"type": "function", "function": {"name": "lookup", "description": "Look a step up.",
                                         "parameters": {"type": "object", "properties": {"step": {"type": "integer"}}}}}
PYTHON_TOOL = "def lookup(state, step):\n    state['seen'] = state.get('seen', 0) + 1\n    return {'step': step, 'ok': True}\n"


def respond(body: dict) -> "str | dict":
    """The fake model: four turns that call ``lookup``, then an answer."""
    turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
    if turn < TURNS - 1:
        call = {"id": f"call_{turn}", "type": "function",
                "function": {"name": "lookup", "arguments": json.dumps({"step": turn})}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    return "done"


def _serve(port: int, latency_ms: float) -> None:
    from gradeloop.testing import FakeOpenAI

    FakeOpenAI(port=port, latency=latency_ms / 1000, responder=respond, record=False).serve_forever()


# -- the clients (each in a child process) -------------------------------------------------


async def _sdk_loop(url: str, episodes: int, concurrency: int) -> tuple[float, int]:
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
    pending = iter(range(episodes))
    finished = 0

    async def episode(i: int) -> bool:
        messages: list[dict] = [{"role": "user", "content": f"episode {i}"}]
        for _ in range(TURNS):
            completion = await client.chat.completions.create(model="fake", messages=messages, tools=[TOOL])
            message = completion.choices[0].message
            if not message.tool_calls:
                return message.content == "done"
            messages.append(message.model_dump(exclude_none=True))
            for call in message.tool_calls:
                result = {"step": json.loads(call.function.arguments)["step"], "ok": True}
                messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
        return False

    async def worker() -> None:
        nonlocal finished
        for i in pending:
            ok = await episode(i)  # not `finished += await …`: that reads `finished` before the await
            finished += ok

    try:
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, finished
    finally:
        await client.close()


def _eval(episodes: int, kind: str) -> dict:
    tools = {"python": PYTHON_TOOL} if kind == "python" else \
        {"canned": {"lookup": [{"arguments": {"step": s}, "result": {"step": s, "ok": True}} for s in range(TURNS)]}}
    return {
        "name": "agent-overhead",
        "data_source_config": {"type": "custom"},
        "testing_criteria": [{"type": "string_check", "name": "done", "operation": "eq",
                              "input": "{{ sample.output_text }}", "reference": "done"}],
        "agent": {"max_turns": TURNS + 1, "tools": tools},
        "data_source": {"type": "completions",
                        "source": {"type": "file_content", "content": [{"item": {"i": i}} for i in range(episodes)]},
                        "input_messages": {"type": "template",
                                           "template": [{"role": "user", "content": "episode {{ item.i }}"}]},
                        "sampling_params": {"tools": [TOOL]}},
    }


async def _gradeloop(url: str, episodes: int, concurrency: int, kind: str) -> tuple[float, int]:
    import gradeloop
    import openai  # noqa: F401 - imported lazily by gradeloop on the first call; keep it out of the timer
    from gradeloop.runner import RunOptions

    spec = gradeloop.eval_from_dict(_eval(episodes, kind))
    with tempfile.TemporaryDirectory() as home:
        store = gradeloop.Store(os.path.join(home, "bench.db"))
        options = RunOptions(base_url=url, concurrency=concurrency, use_cache=False, adaptive_concurrency=False)
        start = time.perf_counter()
        [run_id] = await gradeloop.run_eval_async(spec, ["openai/fake"], store=store, options=options)
        seconds = time.perf_counter() - start
        passed = gradeloop.run_object(store, run_id)["result_counts"]["passed"]
        turns = store.conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
        store.close()
    assert turns == episodes * TURNS, f"{turns} turns stored, expected {episodes * TURNS}"
    return seconds, passed


def _one(kind: str, url: str, episodes: int, concurrency: int) -> None:
    if kind == "openai":
        seconds, ok = asyncio.run(_sdk_loop(url, episodes, concurrency))
    else:
        seconds, ok = asyncio.run(_gradeloop(url, episodes, concurrency, kind))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "ok": ok, "rss_mb": rss_mb}))


# -- the parent ---------------------------------------------------------------------------


def _start_server(latency_ms: float) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--latency-ms", str(latency_ms)],
                            stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    return proc, url


def _measure(kind: str, url: str, episodes: int, concurrency: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", kind, url, "--episodes", str(episodes),
                          "--concurrency", str(concurrency)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=640)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latencies", default="0,50", help="server latencies in ms, comma-separated")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--latency-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--one", nargs=2, metavar=("KIND", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        return _serve(args.serve, args.latency_ms)
    if args.one:
        return _one(args.one[0], args.one[1], args.episodes, args.concurrency)
    print(f"{args.episodes} episodes × {TURNS} turns, concurrency {args.concurrency}; "
          f"{platform.python_version()} on {os.cpu_count()} CPUs")
    print("| client | latency | episodes/s | ms/turn | overhead/turn vs SDK | episodes ok | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    turns = args.episodes * TURNS
    for latency in [float(x) for x in args.latencies.split(",")]:
        server, url = _start_server(latency)
        try:
            base = None
            for kind in KINDS:
                r = _measure(kind, url, args.episodes, args.concurrency)
                per_turn = r["seconds"] * args.concurrency / turns * 1000
                base = per_turn if kind == "openai" else base
                extra = "—" if kind == "openai" else f"{per_turn - base:+.1f} ms"
                print(f"| {LABELS[kind]} | {latency:g} ms | {args.episodes / r['seconds']:.1f} | {per_turn:.1f} | "
                      f"{extra} | {r['ok']}/{args.episodes} | {r['rss_mb']:.0f} MB |", flush=True)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
