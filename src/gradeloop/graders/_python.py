"""``python``: ``grade(sample, item) -> float`` from the grader's ``source``, in a sandbox.

Grades run in a pool of warm, sandboxed worker processes (see ``_sandbox`` for what the
sandbox blocks and how). Each worker compiles a source once and keeps it by sha256, so bulk
grading (RFT rewards, thousands of samples) pays the start-up and import cost once per worker.

Outcomes, as OpenAI reports them:

* a finite real number (int, float, numpy scalar, and also bool: True is 1.0) is the score;
* an exception, a source that does not compile, no ``grade`` taking exactly two arguments,
  any other return value (a string, NaN, inf), the time limit (120 s or ``timeout_seconds``),
  the memory limit (2048 MB or ``memory_mb``), or the worker dying while it ran ``grade``:
  score 0 with ``python_grader_runtime_error`` and its details (the traceback);
* a worker that cannot start or dies before it gets the request (after one retry on a fresh
  worker): ``python_grader_server_error`` with a short ``python_grader_server_error_type``;
  an infrastructure error, so ``passed`` stays None.

``image_tag`` is accepted and ignored: the grader runs with the packages installed next to
gradeloop.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import os
import queue
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..spec import PythonGrader
from ._base import GradeResult, GradingContext, _finish, register_grader
from ._sandbox import MAX_MEMORY_MB, WorkerDied, WorkerProcess, WorkerTimeout

DEFAULT_TIMEOUT_S = 120.0
KILL_GRACE_S = 2.0  # the worker's own alarm fires at the limit; the parent kills this much later


def _limits(grader: PythonGrader) -> tuple[float, int]:
    return (grader.timeout_seconds or DEFAULT_TIMEOUT_S, grader.memory_mb or MAX_MEMORY_MB)


def _request(grader: PythonGrader, sample: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    timeout, memory_mb = _limits(grader)
    sha = hashlib.sha256(grader.source.encode("utf-8")).hexdigest()
    return {"sha": sha, "sample": sample, "item": item, "timeout": timeout, "memory_mb": memory_mb}


def _runtime_error(details: str) -> GradeResult:
    return GradeResult(score=0.0, errors={"python_grader_runtime_error": True,
                                          "python_grader_runtime_error_details": details})


def _server_error(kind: str, message: str) -> GradeResult:
    return GradeResult(score=0.0, errors={"python_grader_server_error": True, "python_grader_server_error_type": kind},
                       details={"error": message})


def _death_details(exc: WorkerDied, timeout: float, memory_mb: int) -> str:
    code = exc.returncode
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


def _run_on(worker: WorkerProcess, grader: PythonGrader, request: dict[str, Any]) -> tuple[GradeResult, bool]:
    """One call on one worker: (result, whether the worker must be replaced). Raises WorkerDied
    when the worker ended before it had the request."""
    timeout, memory_mb = _limits(grader)
    sha = request["sha"]
    if sha not in worker.known_sources:
        request = {**request, "source": grader.source}
    try:
        answer = worker.call(request, timeout + KILL_GRACE_S)
        if answer.get("status") == "need_source":
            answer = worker.call({**request, "source": grader.source}, timeout + KILL_GRACE_S)
    except WorkerTimeout:
        return _runtime_error(f"time limit of {timeout:g} s exceeded (the grader process was killed)"), True
    except WorkerDied as exc:
        if not exc.during_call:
            raise
        return _runtime_error(_death_details(exc, timeout, memory_mb)), True
    worker.known_sources.add(sha)
    recycle = bool(answer.get("recycle"))
    if answer.get("status") == "ok":
        return GradeResult(score=float(answer["score"])), recycle
    return _runtime_error(str(answer.get("details", "the grader failed"))), recycle


def _encode_check(sample: dict[str, Any], item: dict[str, Any]) -> GradeResult | None:
    try:
        json.dumps([sample, item])
    except (TypeError, ValueError) as exc:
        return GradeResult(score=0.0, errors={"other_error": True},
                           details={"error": f"sample or item is not JSON-serializable: {exc}"})
    return None


class WorkerPool:
    """Long-lived sandboxed workers, ``size`` of them (default: one per CPU).

    Safe to use from any thread and any event loop: blocking pipe I/O runs in the pool's
    own threads, one per worker, and idle workers wait on a LIFO queue (the most recently
    used, warmest worker is reused first).
    """

    def __init__(self, size: int | None = None):
        self.size = max(1, size or os.cpu_count() or 1)
        self._idle: queue.LifoQueue[WorkerProcess] = queue.LifoQueue()
        self._all: dict[int, WorkerProcess] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="gradeloop-python")
        for slot in range(self.size):
            self._idle.put(self._start(slot))

    def _start(self, slot: int) -> WorkerProcess:
        worker = WorkerProcess(slot)
        with self._lock:
            self._all[slot] = worker
        return worker

    def _replace(self, worker: WorkerProcess) -> WorkerProcess:
        worker.close()
        if self._closed:
            return worker
        return self._start(worker.slot)

    def grade_sync(self, grader: PythonGrader, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        """Grade one pair, blocking; returns a GradeResult (``passed`` not yet set)."""
        if self._closed:
            raise RuntimeError("the python grader pool is shut down")
        invalid = _encode_check(sample, item)
        if invalid is not None:
            return invalid
        request = _request(grader, sample, item)
        for attempt in range(2):
            worker = self._idle.get()
            try:
                if not worker.alive():
                    worker = self._replace(worker)
                result, replace = _run_on(worker, grader, request)
                if replace:
                    worker = self._replace(worker)
                return result
            except WorkerDied as exc:  # not the grader's fault: retry once on a fresh worker
                worker = self._replace(worker)
                if attempt == 1:
                    return _server_error(exc.kind, str(exc))
            except BaseException:
                worker = self._replace(worker)
                raise
            finally:
                self._idle.put(worker)
        raise AssertionError("unreachable")

    async def grade(self, grader: PythonGrader, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        """Grade one pair without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.grade_sync, grader, sample, item)

    async def grade_batch(self, grader: PythonGrader, pairs: list[tuple[dict, dict]]) -> list[GradeResult]:
        """Grade many pairs on all workers at once; results in order."""
        return list(await asyncio.gather(*(self.grade(grader, s, i) for s, i in pairs)))

    def sandbox_info(self) -> dict[str, Any]:
        """The handshake of one worker: pid, uid and the sandbox mechanisms active on this machine."""
        worker = self._idle.get()
        try:
            return dict(worker.ready())
        finally:
            self._idle.put(worker)

    def shutdown(self) -> None:
        """Stop every worker and every process they left; the pool cannot be used afterwards."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            workers = list(self._all.values())
            self._all.clear()
        for worker in workers:
            if worker.proc.stdin and not worker.proc.stdin.closed:
                try:
                    worker.proc.stdin.close()  # EOF: idle workers exit at once
                except OSError:
                    pass
        for worker in workers:
            worker.close(grace=0.5)


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
    invalid = _encode_check(sample, item)
    if invalid is not None:
        return _finish(grader, invalid)
    worker = WorkerProcess(slot=255)
    try:
        result, _ = _run_on(worker, grader, _request(grader, sample, item))
    except WorkerDied as exc:
        result = _server_error(exc.kind, str(exc))
    finally:
        worker.close(grace=0.5)
    return _finish(grader, result)
