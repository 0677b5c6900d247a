"""``python``: ``grade(sample, item) -> float`` from the grader's ``source``, in a sandbox.

Grades run in a pool of warm, sandboxed workers (see ``_sandbox`` for what the sandbox blocks
and how). A worker serves one source (the pool keys workers by the source's sha256 and keeps
at most ``max_workers`` alive, closing the least recently used idle one): its zygote runs the
source's module-level code once, and each grade runs in a fresh process forked from it, so
bulk grading (RFT rewards, thousands of samples) pays start-up and imports once per worker,
nothing one grade does reaches the next, and results do not depend on order. The returned
value is checked here, in gradeloop's process (:func:`check_score`).

Outcomes, as OpenAI reports them:

* a finite real number (int, float, numpy scalar, and also bool: True is 1.0) is the score;
* an exception, a source that does not compile, no ``grade`` taking exactly two arguments,
  any other return value (a string, NaN, inf), the time limit (120 s or ``timeout_seconds``),
  the memory limit (2048 MB or ``memory_mb``), or the grade's process dying while it ran ``grade``:
  score 0 with ``python_grader_runtime_error`` and its details (the traceback);
* a worker that cannot start or dies before it gets the request (after one retry on a fresh
  worker): ``python_grader_server_error`` with a short ``python_grader_server_error_type``;
  an infrastructure error, so ``passed`` stays None. A worker whose previous grade left state
  behind (a changed file, a process) answers ``stale`` and the grade is retried the same way;
* a finite score outside [0, 1] is kept as returned and flagged with
  ``details.score_out_of_range`` (as every grader's result is; rewards use it unchanged).

The time and memory limits apply to loading the source (once per worker) and to each grade.

``image_tag`` is accepted and ignored: the grader runs with the packages installed next to
gradeloop.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import math
import os
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ..spec import PythonGrader
from ._base import GradeResult, GradingContext, _finish, register_grader
from ._sandbox import (MAX_ANSWER, MAX_MEMORY_MB, WorkerDied, WorkerProcess, WorkerTimeout, grade_request, read_answer,
                       tool_request)

DEFAULT_TIMEOUT_S = 120.0
KILL_GRACE_S = 2.0  # the worker's own alarm fires at the limit; the parent kills this much later


T = TypeVar("T")


@dataclass(frozen=True)
class ToolSource:
    """An agent's python tools: a source defining one function per tool, ``f(state, **arguments)``,
    and the limits of each call. Calls run in the same sandbox as python graders."""

    source: str
    timeout_seconds: float = 60.0
    memory_mb: int = 1024
    kind: str = "tools"


def _limits(grader: PythonGrader | ToolSource) -> tuple[float, int]:
    return (grader.timeout_seconds or DEFAULT_TIMEOUT_S, grader.memory_mb or MAX_MEMORY_MB)


def _sha(grader: PythonGrader | ToolSource) -> str:
    prefix = "tools\0" if isinstance(grader, ToolSource) else ""  # a source loads differently as tools
    return hashlib.sha256((prefix + grader.source).encode("utf-8")).hexdigest()


def _request(grader: PythonGrader, sample: dict[str, Any], item: dict[str, Any]) -> bytes | GradeResult:
    """The grade request for a worker, or the error result when the pair is not JSON-serializable."""
    try:
        return grade_request(*_limits(grader), sample, item)
    except (TypeError, ValueError) as exc:
        return GradeResult(score=0.0, errors={"other_error": True},
                           details={"error": f"sample or item is not JSON-serializable: {exc}"})


def _runtime_error(details: str) -> GradeResult:
    return GradeResult(score=0.0, errors={"python_grader_runtime_error": True,
                                          "python_grader_runtime_error_details": details})


def _server_error(kind: str, message: str) -> GradeResult:
    return GradeResult(score=0.0, errors={"python_grader_server_error": True, "python_grader_server_error_type": kind},
                       details={"error": message})


def _death_details(code: int | None, timeout: float, memory_mb: int) -> str:
    """Why a process ended, from its return code (negative: the signal that killed it)."""
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        if -code == signal.SIGXCPU:
            return f"time limit of {timeout:g} s exceeded (CPU time); the grader process was killed by {name}"
        how = f"was killed by {name}"
        if -code in (signal.SIGKILL, signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT):
            how += f" (this can mean it exceeded the memory limit of {memory_mb} MB)"
    else:
        how = f"exited with status {code}"
    return f"the grader process {how} while running grade()"


def _limit_text(raw: dict[str, Any], timeout: float, memory_mb: int) -> str:
    """A failure the process reported: an exception, or the limit it hit, with its traceback."""
    details = str(raw.get("details", "the grader failed"))
    heading = {"cpu": f"time limit of {timeout:g} s exceeded (CPU time)", "time": f"time limit of {timeout:g} s exceeded",
               "memory": f"memory limit of {memory_mb} MB exceeded"}.get(raw.get("limit"))
    return f"{heading}\n{details}" if heading else details


def _limit_error(raw: dict[str, Any], timeout: float, memory_mb: int) -> GradeResult:
    return _runtime_error(_limit_text(raw, timeout, memory_mb))


def check_score(raw: Any) -> GradeResult:
    """The score in what a grade's process says ``grade`` returned, checked here, in gradeloop's
    own process, which grader code never touches: a finite real number, else a runtime error.

    A score outside [0, 1] is kept as returned (``_finish`` flags it).
    """
    if not isinstance(raw, dict) or raw.get("status") != "returned":
        return _runtime_error(f"the grader process sent an unreadable answer: {raw!r:.200}")
    number = raw.get("number")
    if number is None:
        return _runtime_error(f"grade returned {str(raw.get('repr'))[:200]} ({str(raw.get('type'))[:100]}); "
                              "it must return a float")
    try:
        score = float(number) if type(number) in (int, float) else math.nan
    except OverflowError:  # an int past the float range
        score = math.inf
    if not math.isfinite(score):
        return _runtime_error(f"grade returned {number!r:.200}; it must return a finite float")
    return GradeResult(score=score)


def _from_child(answer: dict[str, Any], timeout: float, memory_mb: int) -> GradeResult:
    """The result of one grade from the zygote's report on the process that ran it."""
    if answer.get("answer"):
        raw = read_answer(answer["answer"])
        if isinstance(raw, dict) and raw.get("status") == "error":
            return _limit_error(raw, timeout, memory_mb)
        return check_score(raw)
    return _runtime_error(_no_answer(answer, timeout, memory_mb))


def _no_answer(answer: dict[str, Any], timeout: float, memory_mb: int) -> str:
    """Why the process that ran the call sent no answer."""
    if answer.get("overtime"):
        return f"time limit of {timeout:g} s exceeded (the grader process was killed)"
    if answer.get("too_large"):
        return f"the grader process wrote more than {MAX_ANSWER // (1 << 20)} MB; it was killed"
    signum, code = answer.get("signal"), answer.get("exitcode")
    return _death_details(-signum if isinstance(signum, int) else code, timeout, memory_mb)


def _load(worker: WorkerProcess, grader: PythonGrader | ToolSource) -> dict[str, Any]:
    """Load the grader's (or tools') source in the worker's zygote once; returns the zygote's answer."""
    if worker.loaded is None:
        timeout, memory_mb = _limits(grader)
        request = {"op": "load", "source": grader.source, "timeout": timeout, "memory_mb": memory_mb,
                   "kind": "tools" if isinstance(grader, ToolSource) else "grader"}
        worker.loaded = worker.call(request, timeout + KILL_GRACE_S)
    return worker.loaded


def _run_on(worker: WorkerProcess, grader: PythonGrader, request: bytes) -> tuple[GradeResult, bool]:
    """One grade on one worker: (result, whether the worker must be replaced). Raises WorkerDied
    when the worker ended before it had the request."""
    timeout, memory_mb = _limits(grader)
    try:
        loaded = _load(worker, grader)
        if loaded.get("status") != "loaded":
            return _limit_error(loaded, timeout, memory_mb), bool(loaded.get("recycle"))
        answer = worker.call(request, timeout + KILL_GRACE_S)
        if answer.get("status") == "stale":  # the last grade left files or processes: not this grade's doing
            worker.close()
            raise WorkerDied("the worker's last grade left state behind", during_call=False, kind="worker_stale")
    except WorkerTimeout:
        return _runtime_error(f"time limit of {timeout:g} s exceeded (the grader process was killed)"), True
    except WorkerDied as exc:
        if not exc.during_call:
            raise
        return _runtime_error(_death_details(exc.returncode, timeout, memory_mb)), True
    recycle = bool(answer.get("recycle"))
    if answer.get("status") == "child":
        return _from_child(answer, timeout, memory_mb), recycle
    return _limit_error(answer, timeout, memory_mb), recycle


def _tool_on(worker: WorkerProcess, tools: ToolSource, request: bytes) -> tuple[dict[str, Any], bool]:
    """One tool call on one worker: (``{"status": "returned", "result", "state"}`` or ``{"status":
    "error", "details"}``, whether the worker must be replaced). Raises WorkerDied as :func:`_run_on`."""
    timeout, memory_mb = _limits(tools)
    try:
        loaded = _load(worker, tools)
        if loaded.get("status") != "loaded":
            return {"status": "error", "details": _limit_text(loaded, timeout, memory_mb)}, bool(loaded.get("recycle"))
        answer = worker.call(request, timeout + KILL_GRACE_S)
        if answer.get("status") == "stale":
            worker.close()
            raise WorkerDied("the worker's last call left state behind", during_call=False, kind="worker_stale")
    except WorkerTimeout:
        return {"status": "error", "details": f"time limit of {timeout:g} s exceeded (the tool was killed)"}, True
    except WorkerDied as exc:
        if not exc.during_call:
            raise
        return {"status": "error", "details": _death_details(exc.returncode, timeout, memory_mb)}, True
    recycle = bool(answer.get("recycle"))
    if answer.get("status") != "child":
        return {"status": "error", "details": _limit_text(answer, timeout, memory_mb)}, recycle
    if not answer.get("answer"):
        return {"status": "error", "details": _no_answer(answer, timeout, memory_mb)}, recycle
    raw = read_answer(answer["answer"])
    if not isinstance(raw, dict) or raw.get("status") not in ("returned", "error"):
        return {"status": "error", "details": f"the tool process sent an unreadable answer: {raw!r:.200}"}, recycle
    if raw["status"] == "error":
        return {"status": "error", "details": _limit_text(raw, timeout, memory_mb)}, recycle
    return raw, recycle


class WorkerPool:
    """Sandboxed workers, each serving one grader source, at most ``max_workers`` alive.

    ``size`` grades run at once (default: one per CPU). A worker's zygote loads its source
    once and forks a fresh process per grade. Idle workers wait per source, the most recently
    used first; when a new source needs a worker and ``max_workers`` are alive, the least
    recently used idle worker is closed. Safe to use from any thread and any event loop.
    """

    def __init__(self, size: int | None = None, max_workers: int | None = None):
        self.size = max(1, size or os.cpu_count() or 1)
        self.max_workers = max(self.size, max_workers or max(2 * self.size, 8))
        self._cond = threading.Condition()
        self._idle: dict[str, list[WorkerProcess]] = {}
        self._lru: OrderedDict[WorkerProcess, None] = OrderedDict()
        self._all: dict[int, WorkerProcess] = {}  # by slot
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="gradeloop-python")

    def _take(self, sha: str) -> tuple[WorkerProcess | None, WorkerProcess | None, int]:
        """Under the lock, wait for: an idle worker for ``sha``, or a free slot (and the idle
        worker to evict from it, if any). Returns (worker, victim, slot)."""
        while True:
            if self._closed:
                raise RuntimeError("the python grader pool is shut down")
            idle = self._idle.get(sha)
            if idle:
                worker = idle.pop()
                del self._lru[worker]
                return worker, None, worker.slot
            free = [slot for slot in range(self.max_workers) if slot not in self._all]
            if free:
                self._all[free[0]] = None  # type: ignore[assignment]  # reserved
                return None, None, free[0]
            if self._lru:
                victim = next(iter(self._lru))
                del self._lru[victim]
                self._idle[victim.sha].remove(victim)
                return None, victim, victim.slot
            self._cond.wait()

    def _acquire(self, sha: str) -> WorkerProcess:
        with self._cond:
            worker, victim, slot = self._take(sha)
        if worker is not None:
            return worker
        if victim is not None:
            victim.close()
        try:
            worker = WorkerProcess(slot, sha=sha)
        except BaseException:
            with self._cond:
                self._all.pop(slot, None)
                self._cond.notify()
            raise
        with self._cond:
            self._all[slot] = worker
        return worker

    def _release(self, worker: WorkerProcess, keep: bool) -> None:
        with self._cond:
            if keep and not self._closed and worker.alive():
                self._idle.setdefault(worker.sha, []).append(worker)
                self._lru[worker] = None
                worker = None  # type: ignore[assignment]
            elif self._all.get(worker.slot) is worker:
                del self._all[worker.slot]
            self._cond.notify()
        if worker is not None:
            worker.close()

    def _with_worker(self, sha: str, run: Callable[[WorkerProcess], tuple[T, bool]],
                     died: Callable[[WorkerDied], T]) -> T:
        """``run`` on a worker for ``sha``; a worker that died before it had the request (not the
        code's fault) is retried once on a fresh one, then ``died`` says what to return."""
        if self._closed:
            raise RuntimeError("the python grader pool is shut down")
        for attempt in range(2):
            worker, keep = self._acquire(sha), False
            try:
                result, replace = run(worker)
                keep = not replace
                return result
            except WorkerDied as exc:
                if attempt == 1:
                    return died(exc)
            finally:
                self._release(worker, keep)
        raise AssertionError("unreachable")

    def grade_sync(self, grader: PythonGrader, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        """Grade one pair, blocking; returns a GradeResult (``passed`` not yet set)."""
        if self._closed:
            raise RuntimeError("the python grader pool is shut down")
        request = _request(grader, sample, item)
        if isinstance(request, GradeResult):
            return request
        return self._with_worker(_sha(grader), lambda worker: _run_on(worker, grader, request),
                                 lambda exc: _server_error(exc.kind, str(exc)))

    def call_tool_sync(self, tools: ToolSource, name: str, arguments: dict[str, Any], state: Any) -> dict[str, Any]:
        """Call ``name(state, **arguments)`` from ``tools`` in a fresh sandboxed process, blocking.
        Returns ``{"status": "returned", "result", "state"}`` (the state as the tool left it) or
        ``{"status": "error", "details"}``; ``"infrastructure": True`` marks a sandbox failure."""
        try:
            request = tool_request(*_limits(tools), name, arguments, state)
        except (TypeError, ValueError) as exc:
            return {"status": "error", "details": f"the arguments or state are not JSON: {exc}"}
        return self._with_worker(_sha(tools), lambda worker: _tool_on(worker, tools, request),
                                 lambda exc: {"status": "error", "details": str(exc), "infrastructure": True})

    async def call_tool(self, tools: ToolSource, name: str, arguments: dict[str, Any], state: Any) -> dict[str, Any]:
        """:meth:`call_tool_sync` without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.call_tool_sync, tools, name, arguments, state)

    async def grade(self, grader: PythonGrader, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        """Grade one pair without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.grade_sync, grader, sample, item)

    async def grade_batch(self, grader: PythonGrader, pairs: list[tuple[dict, dict]]) -> list[GradeResult]:
        """Grade many pairs on all workers at once; results in order."""
        return list(await asyncio.gather(*(self.grade(grader, s, i) for s, i in pairs)))

    def sandbox_info(self) -> dict[str, Any]:
        """The handshake of a worker: pid, uid and the sandbox mechanisms active on this machine."""
        worker, keep = self._acquire(_sha(_PROBE)), False
        try:
            info = dict(worker.ready())
            keep = True
            return info
        finally:
            self._release(worker, keep)

    def live_workers(self) -> list[WorkerProcess]:
        """The workers alive now, busy or idle."""
        with self._cond:
            return [w for w in self._all.values() if w is not None]

    def shutdown(self) -> None:
        """Stop every worker and every process they left; the pool cannot be used afterwards."""
        with self._cond:
            self._closed = True
            workers = [w for w in self._all.values() if w is not None]
            self._all.clear()
            self._idle.clear()
            self._lru.clear()
            self._cond.notify_all()
        self._executor.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            if worker.proc.stdin and not worker.proc.stdin.closed:
                try:
                    worker.proc.stdin.close()  # EOF: idle workers exit at once
                except OSError:
                    pass
        for worker in workers:
            worker.close(grace=0.5)


_PROBE = PythonGrader(type="python", name="sandbox_info", source="def grade(sample, item):\n    return 0.0\n")
_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool() -> WorkerPool:
    """The process-wide worker pool, created on first use."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = WorkerPool()
        return _POOL


def shutdown() -> None:
    """Stop the process-wide pool (a later grade starts a new one). Registered with atexit."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown()


def _forget_after_fork() -> None:
    global _POOL
    _POOL = None  # a forked child must not share the parent's workers


atexit.register(shutdown)
os.register_at_fork(after_in_child=_forget_after_fork)


def sandbox_info() -> dict[str, Any]:
    """What the sandbox enforces on this machine (starts the pool if needed)."""
    return get_pool().sandbox_info()


async def grade_python_batch(grader: PythonGrader, pairs: list[tuple[dict, dict]],
                             context: GradingContext) -> list[GradeResult]:
    """Grade many pairs concurrently on the warm pool; results in order."""
    return await get_pool().grade_batch(grader, pairs)


@register_grader("python", batch=grade_python_batch)
async def grade_python(grader: PythonGrader, sample: dict, item: dict, context: GradingContext) -> GradeResult:
    """The float ``grade(sample, item)`` returns, or 0 with error flags (see the module docstring)."""
    return await get_pool().grade(grader, sample, item)


def grade_python_cold(grader: PythonGrader, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
    """Grade one pair in a fresh sandboxed process started for this call alone (no warm pool).

    Blocking. For benchmarks that compare against the warm pool; returns a finished GradeResult.
    """
    request = _request(grader, sample, item)
    if isinstance(request, GradeResult):
        return _finish(grader, request)
    worker = WorkerProcess(slot=255, sha=_sha(grader))
    try:
        result, _ = _run_on(worker, grader, request)
    except WorkerDied as exc:
        result = _server_error(exc.kind, str(exc))
    finally:
        worker.close(grace=0.5)
    return _finish(grader, result)
