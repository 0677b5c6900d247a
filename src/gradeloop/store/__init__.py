"""The SQLite store (WAL): the source of truth for evals, runs, samples, calls and scores."""

from ._db import SCHEMA_VERSION, CallRecord, SampleRecord, ScoreRecord, Store, default_home, new_id
from ._migrations import MIGRATIONS
from ._runner import runner_alive, runner_identity

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "CallRecord",
    "SampleRecord",
    "ScoreRecord",
    "Store",
    "default_home",
    "new_id",
    "runner_alive",
    "runner_identity",
]
