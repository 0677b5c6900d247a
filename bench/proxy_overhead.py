"""Recording proxy overhead: what ``gradeloop proxy`` adds to a call, and what it costs in throughput.

What it measures
    Chat-completion requests against gradeloop's fake OpenAI-compatible server
    (``python -m gradeloop.testing``, its own process), sent direct and through
    ``gradeloop proxy`` (its own process, recording every request into a fresh store with
    redaction on, as a user runs it), from one client in this process (aiohttp by default;
    ``--client httpx``: httpx2, the httpx fork the openai SDK sends with, when installed, else
    httpx), plain and streamed:

    concurrency 1   ``--requests`` requests (default 400) per mode, direct and proxied requests
                    alternating so both see the same machine load; upstream latency 0 ms, so
                    the figures are the proxy's own cost. Streamed: time to the first chunk.
    concurrency 64  ``--requests-64`` requests (default 3,000, about 3 s; scaled to the same time
                    at slower upstreams) per run from 64 workers, once per upstream latency in
                    ``--latencies`` (default 50 and 500 ms: a very fast model call, and a short
                    ordinary one). Direct and proxied runs alternate in ``--rounds`` rounds
                    (default 5; which goes first rotates). After each proxied run the proxy's
                    writer is left to store what the run sent it, so no run pays for the one
                    before (only proxied runs reach the writer). Every
                    request has its own user text (no duplicates, which the writer stores more
                    cheaply). With no latency at all both paths are bound by the CPU and the
                    comparison says nothing about a proxy in front of a model. Throughput = requests / wall time; loss = 1 -
                    proxied / direct within a pair; the table gives the median pair's loss and
                    the range over the pairs, and the median run's latencies.

    Added latency is p50 (p99) proxied minus p50 (p99) direct.

    The floor (on unless ``--no-floor``): each round also relays through a bare TCP forwarder on
    uvloop where the proxy runs, with no HTTP parsing and no recording. What it loses is what
    one more hop in Python costs on this machine (a context switch and two socket writes per
    message, on cores the client and the upstream share) before the proxy does anything.

    Where the processes run (``--layout``): ``shared`` (default) lets every process use every
    core, so the fake model competes with the client and the proxy for CPU, as a remote model
    never would. ``pin`` (or ``--pin``) gives the proxy and its writer CPU 1 and the client and
    the upstream CPU 0: the proxy on a machine of its own, in front of a remote model.
    ``sidecar`` gives the upstream CPU 0 and the client, proxy and writer CPU 1: the proxy beside
    the app, on the app's CPU.

    The proxy's CPU per call (Linux): what the proxy's process (the relay) and its children (the
    writer, storing what the run sent it) used over its runs at concurrency 64, divided by the
    calls, and the calls per second that one core could serve at that cost. It moves much less
    with the layout than the throughput loss does: it is what the proxy costs, and the loss is
    what that cost does on this machine's layout.

    The fake upstream waits the same time for every call unless ``--spread`` says otherwise
    (uniformly within latency * (1 ± spread)). With no spread, 64 callers move in lockstep: their
    calls come back in waves of 64 at once, which each process handles one after another.

Targets (issue 12): p50 added < 2 ms for plain requests at concurrency 1 (aim 1 ms), and
< 10% throughput loss at concurrency 64.

Run it from the repository root:

    .venv/bin/python bench/proxy_overhead.py
    .venv/bin/python bench/proxy_overhead.py --requests 200 --requests-64 1000 --rounds 1 --latencies 50
    .venv/bin/python bench/proxy_overhead.py --layout sidecar --latencies 50
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
from typing import NamedTuple
from urllib.parse import urlsplit

from gradeloop._server import free_port

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


class _Httpx:
    """The load generator on httpx2 (the HTTP client the openai SDK sends with) or httpx."""

    def __init__(self, connections: int) -> None:
        http = _http()
        limits = http.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.client = http.AsyncClient(timeout=120, limits=limits)

    async def one(self, url: str, i: int, stream: bool) -> float:
        start = time.perf_counter()
        if not stream:
            response = await self.client.post(f"{url}/chat/completions", json=_body(i, False))
            response.raise_for_status()
            response.json()
            return time.perf_counter() - start
        async with self.client.stream("POST", f"{url}/chat/completions", json=_body(i, True)) as response:
            response.raise_for_status()
            first = None
            async for _ in response.aiter_raw():
                first = first or time.perf_counter() - start
            return first

    async def close(self) -> None:
        await self.client.aclose()


class _Aiohttp:
    """The load generator on aiohttp: a C HTTP parser, so the client's own CPU per request is
    about a third of httpx's and leaves the cores to what is measured."""

    def __init__(self, connections: int) -> None:
        import aiohttp

        self.client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections),
                                            timeout=aiohttp.ClientTimeout(total=120))

    async def one(self, url: str, i: int, stream: bool) -> float:
        start = time.perf_counter()
        async with self.client.post(f"{url}/chat/completions", json=_body(i, stream)) as response:
            response.raise_for_status()
            if not stream:
                await response.json()
                return time.perf_counter() - start
            first = None
            async for _ in response.content.iter_any():
                first = first or time.perf_counter() - start
            return first

    async def close(self) -> None:
        await self.client.close()


CLIENTS = {"aiohttp": _Aiohttp, "httpx": _Httpx}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def sequential(direct: str, proxied: str, n: int, stream: bool,
                     client: str = "aiohttp") -> dict[str, list[float]]:
    """Concurrency 1: alternating direct and proxied requests; seconds per request for each."""
    times: dict[str, list[float]] = {"direct": [], "proxy": []}
    http = CLIENTS[client](2)
    try:
        for i in range(30):  # warm both paths (connections, caches)
            await http.one(direct, i, stream)
            await http.one(proxied, i, stream)
        for i in range(n):
            order = [("direct", direct), ("proxy", proxied)][:: 1 if i % 2 else -1]
            for name, url in order:
                times[name].append(await http.one(url, i, stream))
    finally:
        await http.close()
    return times


async def concurrent(url: str, n: int, stream: bool, workers: int = 64, client: str = "aiohttp",
                     first: int = 0) -> tuple[float, list[float]]:
    """``n`` requests from ``workers`` workers, numbered from ``first`` (each its own user
    text, so none is a duplicate of one recorded before); (wall seconds, seconds per request)."""
    http = CLIENTS[client](workers)
    try:
        await asyncio.gather(*(http.one(url, first + i, stream) for i in range(workers)))  # open the connections
        pending, times = iter(range(first + workers, first + workers + n)), []

        async def worker() -> None:
            for i in pending:
                times.append(await http.one(url, i, stream))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        return time.perf_counter() - start, times
    finally:
        await http.close()


class Layout(NamedTuple):
    """Where each process runs (None: on every core), and the table's words for it."""

    client: set[int] | None  # this process
    upstream: set[int] | None
    proxy: set[int] | None  # with its writer
    text: str


LAYOUTS = {
    "shared": Layout(None, None, None, "not pinned: client, upstream, proxy and writer share every core"),
    "pin": Layout({0}, {0}, {1}, "pinned: client and upstream on CPU 0, proxy and writer on CPU 1 (the proxy on "
                                 "a core of its own)"),
    "sidecar": Layout({1}, {0}, {1}, "pinned: upstream on CPU 0, client, proxy and writer on CPU 1 (the proxy "
                                     "beside the app, the model elsewhere)"),
}


def _on(cpus: set[int] | None):
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


class Pair:
    """A fake upstream and a recording proxy in front of it, each in its own process, on the
    CPUs that ``layout`` (a key of LAYOUTS) gives them."""

    def __init__(self, latency_ms: float, layout: str = "shared", sample_rate: float = 1.0,
                 spread: float = 0.0, floor: bool = False) -> None:
        upstream_cpu, proxy_cpu = _on(LAYOUTS[layout].upstream), _on(LAYOUTS[layout].proxy)
        self.home = tempfile.TemporaryDirectory(prefix="gradeloop-proxy-bench-")
        self.upstream = subprocess.Popen([sys.executable, "-m", "gradeloop.testing", "--port", "0", "--latency-ms",
                                          str(latency_ms), "--latency-spread", str(spread)],
                                         stdout=subprocess.PIPE, text=True,
                                         preexec_fn=upstream_cpu)  # noqa: PLW1509 (no threads yet)
        self.direct = self.upstream.stdout.readline().strip()
        port = free_port()
        env = {**os.environ, "GRADELOOP_HOME": self.home.name}
        self.proxy = subprocess.Popen([sys.executable, "-m", "gradeloop", "proxy", "--upstream", self.direct,
                                       "--port", str(port), "--tag", "bench", "--sample-rate", str(sample_rate)], env=env, stderr=subprocess.DEVNULL,
                                      preexec_fn=proxy_cpu)  # noqa: PLW1509 (no threads yet)
        self.proxied = f"http://127.0.0.1:{port}/v1"
        self.forwarder = self.forwarded = None
        if floor:  # the bare relay runs where the proxy runs
            hop = free_port()
            self.forwarder = subprocess.Popen([sys.executable, __file__, "--serve-forwarder",
                                               urlsplit(self.direct).netloc, str(hop)],
                                              stdout=subprocess.PIPE, text=True,
                                              preexec_fn=proxy_cpu)  # noqa: PLW1509 (no threads yet)
            self.forwarder.stdout.readline()
            self.forwarded = f"http://127.0.0.1:{hop}/v1"
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

    def drain(self, timeout: float = 300) -> int:
        """Wait until the writer has stored everything queued (so that no run pays for the one
        before it); returns how many exchanges were queued when asked."""
        queued = first = self.recorded()["queued"]
        deadline = time.time() + timeout
        while queued and time.time() < deadline:
            time.sleep(0.1)
            queued = self.recorded()["queued"]
        time.sleep(0.3)  # its counts reach the proxy every 0.25 s, and it writes the last one
        return first

    def cpu(self) -> tuple[float, float] | None:
        """CPU seconds the proxy has used so far: its own process (the relay) and its children
        (the writer); None where /proc cannot say."""
        return _tree_cpu(self.proxy.pid)

    def stop(self) -> None:
        for proc in (self.proxy, self.upstream, self.forwarder):
            if proc is None:
                continue
            proc.terminate()
            proc.wait(30)
        self.home.cleanup()


class _Forward(asyncio.Protocol):
    """One side of a bare TCP relay: bytes from one socket written to the other as they come."""

    def __init__(self, peer: _Forward | None = None) -> None:
        self.peer, self.transport, self.early = peer, None, []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.early.append(data)  # the caller spoke before the upstream connection was open

    def connection_lost(self, exc) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


def serve_forwarder(upstream: str, port: int) -> None:
    """A bare TCP relay to ``upstream`` (host:port) on ``port``, on uvloop when installed: what one
    more hop in Python costs on this machine with no HTTP, no parsing and no recording at all
    (``--floor``)."""
    host, upstream_port = upstream.rsplit(":", 1)

    def caller() -> _Forward:
        front = _Forward()
        loop = asyncio.get_running_loop()

        async def connect() -> None:
            back = _Forward(front)
            await loop.create_connection(lambda: back, host, int(upstream_port))
            front.peer = back
            for data in front.early:
                back.transport.write(data)
            front.early = []

        loop.create_task(connect())
        return front

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(caller, "127.0.0.1", port)
        print("ready", flush=True)
        await server.serve_forever()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


def _tree_cpu(pid: int) -> tuple[float, float] | None:
    """CPU seconds (user + system) of process ``pid`` and of all its descendants, from Linux's /proc."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except (OSError, ValueError, AttributeError):
        return None
    parent, used = {}, {}
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:  # it ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after the name: state, ppid, … utime (12th), stime
        parent[int(entry)], used[int(entry)] = int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks
    if pid not in used:
        return None
    below, todo = 0.0, [pid]
    while todo:
        of = todo.pop()
        kids = [child for child, up in parent.items() if up == of]
        below += sum(used[k] for k in kids)
        todo += kids
    return used[pid], below


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per mode at concurrency 1")
    parser.add_argument("--requests-64", type=int, default=3000,
                        help="requests per run at concurrency 64 against a 50 ms upstream (scaled to the same time "
                             "at slower ones, at least 640)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="direct/proxied pairs of runs at concurrency 64; the loss is the median pair's")
    parser.add_argument("--latencies", default="50,500", help="upstream latencies (ms) at concurrency 64")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="shared",
                        help="where the processes run (needs 2 cores but for shared): shared (default: every process "
                             "on every core), pin (client and upstream on CPU 0, the proxy and its writer on CPU 1: "
                             "the proxy with a core of its own, as in front of a remote model), sidecar (the upstream "
                             "on CPU 0, client, proxy and writer on CPU 1: the proxy beside the app)")
    parser.add_argument("--pin", action="store_const", const="pin", dest="layout", help="--layout pin")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="aiohttp",
                        help="the load generator's HTTP client (default aiohttp; httpx costs the client about three "
                             "times the CPU per request, which on 2 cores comes out of what the proxy and the "
                             "upstream get)")
    parser.add_argument("--spread", type=float, default=0.0,
                        help="the upstream's latency varies uniformly over latency * (1 ± spread)")
    parser.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                        help="in each round at concurrency 64, also relay through a bare TCP forwarder (no HTTP, no "
                             "recording): what one more hop costs on this machine before the proxy does anything "
                             "(default on)")
    parser.add_argument("--serve-forwarder", nargs=2, metavar=("UPSTREAM", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--sample-rate", type=float, default=1.0,
                        help="the proxy's --sample-rate (0: relay only, to see what recording costs)")
    args = parser.parse_args()
    if not 0 <= args.spread <= 1:
        parser.error(f"--spread must be from 0 to 1, not {args.spread:g}")
    if args.serve_forwarder:
        return serve_forwarder(args.serve_forwarder[0], int(args.serve_forwarder[1]))
    if LAYOUTS[args.layout].client:
        os.sched_setaffinity(0, LAYOUTS[args.layout].client)
    latencies = [float(x) for x in args.latencies.split(",") if x.strip()]

    rows, throughput = [], []
    pair = Pair(0, args.layout, args.sample_rate)
    try:
        for stream in (False, True):
            times = asyncio.run(sequential(pair.direct, pair.proxied, args.requests, stream, args.client))
            rows.append(("stream (1st chunk)" if stream else "plain", 1, 0, times["direct"], times["proxy"]))
        counts_1 = pair.recorded()
    finally:
        pair.stop()
    counts, lags, cpu = [counts_1], [], []
    numbered = 0  # every request of the run its own user text: real traffic is mostly distinct
    for latency in latencies:
        pair = Pair(latency, args.layout, args.sample_rate, args.spread, args.floor)
        # as many requests at a slower upstream as fill about the same time (at least 10 waves)
        n = max(10 * 64, round(args.requests_64 * 50 / max(latency, 50)))
        try:
            for stream in (False, True):
                runs: dict[str, list[tuple[float, list[float]]]] = {"direct": [], "proxy": [], "floor": []}
                spent = [0.0, 0.0]  # the proxy's CPU seconds in its runs: relay, writer
                for round_ in range(args.rounds):
                    order = [("direct", pair.direct), ("proxy", pair.proxied)]
                    if pair.forwarded:
                        order.append(("floor", pair.forwarded))
                    for name, url in order[round_ % len(order):] + order[:round_ % len(order)]:
                        before = pair.cpu() if name == "proxy" else None
                        runs[name].append(asyncio.run(concurrent(url, n, stream, client=args.client, first=numbered)))
                        numbered += n + 64
                        if name == "proxy":
                            lags.append(pair.drain())  # what it stores after the run counts for the run
                            after = pair.cpu()
                            if before and after:
                                spent = [spent[0] + after[0] - before[0], spent[1] + after[1] - before[1]]
                label = "stream (1st chunk)" if stream else "plain"
                losses = sorted(1 - d / p for (d, _), (p, _) in zip(runs["direct"], runs["proxy"]))
                middle = len(losses) // 2
                direct = sorted(runs["direct"])[middle]  # the median run of each (by wall time)
                proxied = sorted(runs["proxy"])[middle]
                rows.append((label, 64, latency, direct[1], proxied[1]))
                if any(spent):
                    calls = args.rounds * (n + 64)  # each run opens its 64 connections with a call each
                    cpu.append((label, latency, spent[0] / calls * 1000, spent[1] / calls * 1000))
                throughput.append((label, latency, n, n / direct[0], n / proxied[0], losses))
                if runs["floor"]:
                    floor = sorted(1 - d / f for (d, _), (f, _) in zip(runs["direct"], runs["floor"]))
                    throughput.append((f"{label}: bare relay", latency, n, n / direct[0],
                                       n / sorted(runs["floor"])[middle][0], floor))
            counts.append(pair.recorded())
        finally:
            pair.stop()

    print(f"gradeloop proxy overhead; python {platform.python_version()}, {os.cpu_count()} cores, "
          f"client {_http().__name__ if args.client == 'httpx' else 'aiohttp'}; the proxy records every request "
          f"(redaction on); "
          + LAYOUTS[args.layout].text
          + ("" if args.sample_rate == 1 else f"; the proxy records a share of {args.sample_rate:g} of the requests")
          + (f"; upstream latency spread ±{args.spread:.0%}" if args.spread else "; every upstream call takes the same time"))
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
    width = max([len(row[0]) for row in throughput] + [len("proxy CPU per call at 64")])
    print(f"\n{'throughput at 64':<{width}} {'upstream':>8} {'requests':>8} {'direct req/s':>12} {'proxy req/s':>12} "
          f"{'loss':>7} {'rounds':>17}  target (median loss of {args.rounds} paired rounds)")
    for label, latency, n, direct, proxied, losses in throughput:
        loss = losses[len(losses) // 2]
        spread = f"{losses[0]:.1%} .. {losses[-1]:.1%}"
        target = ("(what one more hop costs here: no target)" if label.endswith("bare relay") else
                  f"< {TARGET_LOSS:.0%}: {_met(loss < TARGET_LOSS)}")
        print(f"{label:<{width}} {latency:>6g}ms {n:>8} {direct:>12.0f} {proxied:>12.0f} {loss:>6.1%} {spread:>17}  "
              f"{target}")
    if cpu:
        print(f"\n{'proxy CPU per call at 64':<{width}} {'upstream':>8} {'relay':>9} {'writer':>9} {'calls/s per core':>17}"
              "  (the relay's process, and the writer storing what the run sent it)")
        for label, latency, relay, writer in cpu:
            print(f"{label:<{width}} {latency:>6g}ms {relay:>7.3f}ms {writer:>7.3f}ms {1000 / (relay + writer):>17.0f}")
    total = {key: sum(c[key] for c in counts) for key in ("recorded", "duplicates", "failed", "dropped", "queued")}
    print(f"\nrecorded by the proxy: {total['recorded']} new records and {total['duplicates']} duplicates, "
          f"{total['failed']} failed, {total['dropped']} dropped, {total['queued']} still queued when counted; the writer's backlog at the end of a proxied run: "
          f"{max(lags, default=0)} at most (it catches up between runs)")


if __name__ == "__main__":
    main()
