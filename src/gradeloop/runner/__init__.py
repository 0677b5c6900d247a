"""The runner: schedules items × models × epochs with bounded concurrency, retries, cache, resume."""

from ._progress import LineReporter, Reporter, RichReporter, progress_reporter
from ._retry import RetryPolicy, call_with_retries
from ._pool import ModelPool, PoolGradingContext, grading_session, resolve_model_name
from ._run import RunOptions, resume_run, resume_run_async, run_eval, run_eval_async

__all__ = [
    "ModelPool",
    "PoolGradingContext",
    "grading_session",
    "Reporter",
    "RetryPolicy",
    "RichReporter",
    "LineReporter",
    "progress_reporter",
    "RunOptions",
    "call_with_retries",
    "resolve_model_name",
    "resume_run",
    "resume_run_async",
    "run_eval",
    "run_eval_async",
]
