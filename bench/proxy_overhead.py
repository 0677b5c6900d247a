"""Recording proxy overhead: what ``gradeloop proxy`` adds to a call, and what it costs in throughput.

What it measures
    Chat-completion requests against gradeloop's fake OpenAI-compatible server
    (``python -m gradeloop.testing``, its own process), sent direct and through
    ``gradeloop proxy`` (its own process, recording every request into a fresh store with
    redaction on, as a user runs it), from one client in this process (httpx2, the httpx fork
    the openai SDK sends with, when installed; else httpx), plain and streamed:

    concurrency 1   ``--requests`` requests (default 400) per mode, direct and proxied requests
                    alternating so both see the same machine load; upstream latency 0 ms, so
                    the figures are the proxy's own cost. Streamed: time to the first chunk.
    concurrency 64  ``--requests-64`` requests (default 1,500) per mode from 64 workers, direct
                    and proxied runs alternating ``--rounds`` times (best of each kept), once
                    per upstream latency in ``--latencies`` (default 50 and 500 ms: a very fast
                    model call, and a short ordinary one). With no latency at all both paths
                    are bound by the CPU and the comparison says nothing about a proxy in
                    front of a model. Throughput = requests / wall time; loss = 1 - proxied / direct.

    Added latency is p50 (p99) proxied minus p50 (p99) direct.

Targets (issue 12): p50 added < 2 ms for plain requests at concurrency 1 (aim 1 ms), and
< 10% throughput loss at concurrency 64.

Run it from the repository root:

    .venv/bin/python bench/proxy_overhead.py
    .venv/bin/python bench/proxy_overhead.py --requests 200 --requests-64 1000 --rounds 1 --latencies 50
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import platform
import subprocess
import sys
import tempfile
import time

TARGET_P50_MS, AIM_P50_MS, TARGET_LOSS = 2.0, 1.0, 0.10


def _http():
    for name in ("httpx2", "httpx"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise SystemExit("needs httpx")


def _body(i: int, stream: bool) -> dict:
    body = {"model": "fake", "messages": [{"role": "system", "content": "You are the checkout bot."},
                                          {"role": "user", "content": f"where is my order number {i} please"}]}
    return {**body, "stream": True, "stream_options": {"include_usage": True}} if stream else body


async def _one(client, url: str, i: int, stream: bool) -> float:
    """Seconds to the whole answer (plain) or to the first chunk of the stream."""
    start = time.perf_counter()
    if not stream:
        response = await client.post(f"{url}/chat/completions", json=_body(i, False))
        response.raise_for_status()
        response.json()
        return time.perf_counter() - start
    async with client.stream("POST", f"{url}/chat/completions", json=_body(i, True)) as response:
        response.raise_for_status()
        first = None
        async for _ in response.aiter_raw():
            first = first or time.perf_counter() - start
        return first


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def sequential(direct: str, proxied: str, n: int, stream: bool) -> dict[str, list[float]]:
    """Concurrency 1: alternating direct and proxied requests; seconds per request for each."""
    http = _http()
    times: dict[str, list[float]] = {"direct": [], "proxy": []}
    async with http.AsyncClient(timeout=60) as client:
        for i in range(30):  # warm both paths (connections, caches)
            await _one(client, direct, i, stream)
            await _one(client, proxied, i, stream)
        for i in range(n):
            order = [("direct", direct), ("proxy", proxied)][:: 1 if i % 2 else -1]
            for name, url in order:
                times[name].append(await _one(client, url, i, stream))
    return times


async def concurrent(url: str, n: int, stream: bool, workers: int = 64) -> tuple[float, list[float]]:
    """``n`` requests from ``workers`` workers; (wall seconds, seconds per request)."""
    http = _http()
    limits = http.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with http.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(*(_one(client, url, i, stream) for i in range(workers)))  # open the connections
        pending, times = iter(range(n)), []

        async def worker() -> None:
            for i in pending:
                times.append(await _one(client, url, i, stream))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        return time.perf_counter() - start, times


class Pair:
    """A fake upstream and a recording proxy in front of it, each in its own process; with
    ``pin``, the upstream on CPU 0 (with the client) and the proxy and its writer on CPU 1."""

    def __init__(self, latency_ms: float, pin: bool = False) -> None:
        upstream_cpu = (lambda: os.sched_setaffinity(0, {0})) if pin else None
        proxy_cpu = (lambda: os.sched_setaffinity(0, {1})) if pin else None
        self.home = tempfile.TemporaryDirectory(prefix="gradeloop-proxy-bench-")
        self.upstream = subprocess.Popen([sys.executable, "-m", "gradeloop.testing", "--port", "0", "--latency-ms",
                                          str(latency_ms)], stdout=subprocess.PIPE, text=True,
                                         preexec_fn=upstream_cpu)
        self.direct = self.upstream.stdout.readline().strip()
        port = _free_port()
        env = {**os.environ, "GRADELOOP_HOME": self.home.name}
        self.proxy = subprocess.Popen([sys.executable, "-m", "gradeloop", "proxy", "--upstream", self.direct,
                                       "--port", str(port), "--tag", "bench"], env=env, stderr=subprocess.DEVNULL,
                                      preexec_fn=proxy_cpu)
        self.proxied = f"http://127.0.0.1:{port}/v1"
        self._wait()

    def _wait(self) -> None:
        http = _http()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if http.get(f"{self.proxied}/models", timeout=2).status_code == 200:
                    return
            except http.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the proxy did not start")

    def recorded(self) -> dict:
        """The proxy's own counts (recorded, failed …)."""
        return _http().get(f"{self.proxied}/gradeloop/status", timeout=60).json()

    def stop(self) -> None:
        for proc in (self.proxy, self.upstream):
            proc.terminate()
            proc.wait(30)
        self.home.cleanup()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per mode at concurrency 1")
    parser.add_argument("--requests-64", type=int, default=1500, help="requests per run at concurrency 64")
    parser.add_argument("--rounds", type=int, default=2, help="direct/proxied runs at concurrency 64 (best kept)")
    parser.add_argument("--latencies", default="50,500", help="upstream latencies (ms) at concurrency 64")
    parser.add_argument("--pin", action="store_true",
                        help="client and upstream on CPU 0, the proxy and its writer on CPU 1 (the proxy with a core "
                             "of its own, as in front of a remote model; needs 2 cores)")
    args = parser.parse_args()
    if args.pin:
        os.sched_setaffinity(0, {0})
    latencies = [float(x) for x in args.latencies.split(",") if x.strip()]

    rows, throughput = [], []
    pair = Pair(0, args.pin)
    try:
        for stream in (False, True):
            times = asyncio.run(sequential(pair.direct, pair.proxied, args.requests, stream))
            rows.append(("stream (1st chunk)" if stream else "plain", 1, 0, times["direct"], times["proxy"]))
        counts_1 = pair.recorded()
    finally:
        pair.stop()
    counts = [counts_1]
    for latency in latencies:
        pair = Pair(latency, args.pin)
        try:
            for stream in (False, True):
                best: dict[str, tuple[float, list[float]]] = {}
                for _ in range(args.rounds):
                    for name, url in (("direct", pair.direct), ("proxy", pair.proxied)):
                        wall, times = asyncio.run(concurrent(url, args.requests_64, stream))
                        if name not in best or wall < best[name][0]:
                            best[name] = (wall, times)
                label = "stream (1st chunk)" if stream else "plain"
                rows.append((label, 64, latency, best["direct"][1], best["proxy"][1]))
                throughput.append((label, latency, args.requests_64 / best["direct"][0],
                                   args.requests_64 / best["proxy"][0]))
            counts.append(pair.recorded())
        finally:
            pair.stop()

    print(f"gradeloop proxy overhead; python {platform.python_version()}, {os.cpu_count()} cores, "
          f"client {_http().__name__}; the proxy records every request (redaction on); "
          + ("pinned: client and upstream on CPU 0, proxy and writer on CPU 1" if args.pin else
             "not pinned: client, upstream, proxy and writer share every core"))
    print(f"{'mode':<19} {'conc':>4} {'upstream':>8} {'direct p50':>10} {'proxy p50':>9} {'added p50':>9} "
          f"{'direct p99':>10} {'proxy p99':>9} {'added p99':>9}  target")
    for label, conc, latency, direct, proxied in rows:
        d50, p50, d99, p99 = _pct(direct, .5), _pct(proxied, .5), _pct(direct, .99), _pct(proxied, .99)
        target = ""
        if conc == 1 and label == "plain":
            target = (f"added p50 < {TARGET_P50_MS:g} ms (aim {AIM_P50_MS:g}): {_met(p50 - d50 < TARGET_P50_MS)}"
                      f"{' (aim met)' if p50 - d50 < AIM_P50_MS else ''}")
        print(f"{label:<19} {conc:>4} {latency:>6g}ms {d50:>8.2f}ms {p50:>7.2f}ms {p50 - d50:>7.2f}ms "
              f"{d99:>8.2f}ms {p99:>7.2f}ms {p99 - d99:>7.2f}ms  {target}")
    print(f"\n{'throughput at 64':<19} {'upstream':>8} {'direct req/s':>12} {'proxy req/s':>12} {'loss':>7}  target")
    for label, latency, direct, proxied in throughput:
        loss = 1 - proxied / direct
        print(f"{label:<19} {latency:>6g}ms {direct:>12.0f} {proxied:>12.0f} {loss:>6.1%}  "
              f"< {TARGET_LOSS:.0%}: {_met(loss < TARGET_LOSS)}")
    total = {key: sum(c[key] for c in counts) for key in ("recorded", "duplicates", "failed", "dropped", "queued")}
    print(f"\nrecorded by the proxy: {total['recorded']} new records and {total['duplicates']} duplicates, "
          f"{total['failed']} failed, {total['dropped']} dropped, {total['queued']} still queued when counted")


if __name__ == "__main__":
    main()
