"""The runner: schedules items × models × epochs with bounded concurrency, retries, cache, resume."""

from ._progress import LineReporter, Reporter, RichReporter, progress_reporter
from ._retry import RetryPolicy, call_with_retries
from ._run import RunOptions, resolve_model_name, resume_run, resume_run_async, run_eval, run_eval_async

__all__ = [
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
