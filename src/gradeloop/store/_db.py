"""The SQLite store: evals, runs, items, samples, model calls, scores, response cache.

One :class:`Store` per process and thread. Every write that makes a unit of work durable
(a sample with the calls that produced it; the scores with the output item) is one
transaction, so a process killed at any moment leaves the store consistent.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GradeloopError, NotFoundError
from ..redact import scrub_json
from ._harvest import HarvestMixin
from ._jobs import JobsMixin
from ._migrations import MIGRATIONS
from ._pages import PagesMixin, json_path
from ._runner import runner_alive, runner_identity

__all__ = ["Store", "default_home", "SampleRecord", "CallRecord", "ScoreRecord", "SCHEMA_VERSION"]

SCHEMA_VERSION = len(MIGRATIONS)


def default_home() -> Path:
    """``$GRADELOOP_HOME`` or ``./.gradeloop``."""
    return Path(os.environ.get("GRADELOOP_HOME") or ".gradeloop")


_WRITES = ("INSERT", "UPDATE", "REPLACE")


class _ScrubbingConnection(sqlite3.Connection):
    """A connection whose writes store no secret: every text parameter of an INSERT, UPDATE
    or REPLACE passes :func:`gradeloop.redact.scrub` (JSON columns as text: it keeps JSON valid).
    One place for every table (samples, model calls, scores, runs, cache, jobs and events)."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return super().execute(sql, _scrubbed(sql, parameters))

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        if sql.lstrip()[:7].upper().startswith(_WRITES):
            parameters = (scrub_json(row) for row in parameters)
        return super().executemany(sql, parameters)


def _scrubbed(sql: str, parameters: Any) -> Any:
    return scrub_json(parameters) if parameters and sql.lstrip()[:7].upper().startswith(_WRITES) else parameters


def _private_dir(path: Path, *, tighten: bool) -> None:
    """Create ``path`` (with its parents) readable by its owner only; ``tighten`` also fixes
    an existing one (the store's home), which a chosen folder of the user's is not."""
    existed = path.is_dir()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if tighten or not existed:
        _chmod(path, 0o700)


def _private_file(path: Path) -> None:
    """Create ``path`` 0600 if it is missing (SQLite would make it 0644) and tighten it if not."""
    try:
        # O_EXCL: never open an existing database, since closing any descriptor of a file drops
        # the POSIX locks SQLite holds on it through other connections of this process
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        _chmod(path, 0o600)
    except OSError:
        pass  # a read-only folder: sqlite3 says why when it opens the file


def _chmod(path: Path, mode: int) -> None:
    try:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            os.chmod(path, mode)
    except OSError:
        pass  # missing, or another user's: nothing this process may tighten


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


INPUT_SHARE_CHARS = 2048  # prompts this long are stored once in ``inputs`` and referenced


def new_id(prefix: str) -> str:
    """An OpenAI-style id: ``prefix_`` and 32 hex digits."""
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass
class CallRecord:
    """One attempt at a model call, as stored (request and response bodies, never headers)."""

    purpose: str
    provider: str
    model: str
    base_url: str | None
    attempt: int
    status: str
    request: dict | None
    response: dict | None
    error: dict | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float | None
    created_at: float


@dataclass
class SampleRecord:
    """A finished sample: the model's output for one item and epoch, or the error that ended it."""

    status: str  # "ok" | "error" | "provided"
    model: str | None
    input: list[dict] | None
    output: dict | None  # the assistant message
    choices: list[dict] | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None
    latency_ms: float | None
    cached: bool
    cache_key: str | None
    params: dict | None
    error: dict | None
    trajectory: dict | None = None  # an agent episode: messages, tool calls and results, final state


@dataclass
class ScoreRecord:
    """One criterion's result on one sample."""

    criterion: int
    name: str
    type: str
    grader_hash: str
    score: float | None
    passed: bool | None
    result: dict


class Store(JobsMixin, HarvestMixin, PagesMixin):
    """The gradeloop database. ``Store()`` opens (and creates or upgrades) the default one."""

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            home = default_home()
            _private_dir(home, tighten=True)
            path = home / "gradeloop.db"
        self.path = Path(path)
        _private_dir(self.path.parent, tighten=False)
        _private_file(self.path)
        self.conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None,
                                    factory=_ScrubbingConnection)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        # checkpoints fsync the database; every 1,000 pages (the default) they cost more than the
        # writes themselves. 10,000 pages (~40 MB of WAL) keeps them rare; close() truncates the WAL.
        self.conn.execute("PRAGMA wal_autocheckpoint=10000")
        self.conn.execute("PRAGMA foreign_keys=ON")
        for suffix in ("-wal", "-shm"):  # SQLite gives new ones the database's mode; older ones may be looser
            _chmod(Path(f"{self.path}{suffix}"), 0o600)
        self._migrate()

    @classmethod
    def open_readonly(cls, path: str | Path) -> "Store":
        """Open an existing database read-only (SQLite's ``mode=ro``): nothing is created,
        migrated or written, and every write raises. Raises NotFoundError for a missing file and
        GradeloopError for a schema this gradeloop does not read as it is."""
        path = Path(path)
        if not path.is_file():
            raise NotFoundError(f"no gradeloop store at {path} (run an eval first, or set GRADELOOP_HOME)")
        store = cls.__new__(cls)
        store.path = path
        store.conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        store.conn.row_factory = sqlite3.Row
        version = store.schema_version()
        if version != SCHEMA_VERSION:
            store.conn.close()
            raise GradeloopError(f"{path} has schema version {version}, this gradeloop reads {SCHEMA_VERSION}: "
                                 "run any gradeloop command on it to upgrade, or upgrade gradeloop")
        return store

    # -- schema -----------------------------------------------------------------------

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise GradeloopError(
                f"{self.path} has schema version {version}, newer than this gradeloop knows "
                f"({SCHEMA_VERSION}); upgrade gradeloop"
            )
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            for number, (name, sql) in enumerate(MIGRATIONS, start=1):
                if number <= version:
                    continue
                for statement in _statements(sql):
                    self.conn.execute(statement)
                self.conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, time.time()))
                self.conn.execute(f"PRAGMA user_version = {number}")

    def schema_version(self) -> int:
        """The schema version of the open database."""
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def migrations(self) -> list[str]:
        """Names of the applied migrations, in order."""
        return [r[0] for r in self.conn.execute("SELECT name FROM schema_migrations ORDER BY name")]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception. Inside another transaction it
        is a savepoint: an exception undoes only its own writes, and nothing is committed until
        the outermost one ends (many small writes then share one commit)."""
        if self.conn.in_transaction:
            self.conn.execute("SAVEPOINT nested")
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:  # (SQLite may have rolled all of it back already)
                    self.conn.execute("ROLLBACK TO nested")
                    self.conn.execute("RELEASE nested")
                raise
            self.conn.execute("RELEASE nested")
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        """Checkpoint the WAL into the database and close the connection."""
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass  # another process is reading; its next checkpoint will do it
        self.conn.close()

    # -- evals ------------------------------------------------------------------------

    def add_eval(self, definition: dict[str, Any], source_file: str | None = None) -> str:
        """Store an eval definition (deduplicated by content); returns its id."""
        canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        row = self.conn.execute("SELECT id FROM evals WHERE definition_hash = ?", (digest,)).fetchone()
        if row:
            return row["id"]
        eval_id = new_id("eval")
        with self.transaction():
            self.conn.execute(
                "INSERT INTO evals VALUES (?, ?, ?, ?, ?, ?)",
                (eval_id, definition.get("name"), canonical, digest, source_file, int(time.time())),
            )
        return eval_id

    def get_eval(self, eval_id: str) -> dict[str, Any]:
        """The stored eval as ``{id, name, definition, source_file, created_at}``."""
        row = self.conn.execute("SELECT * FROM evals WHERE id = ?", (eval_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no eval with id {eval_id}")
        return {
            "id": row["id"], "name": row["name"], "definition": _loads(row["definition"]),
            "source_file": row["source_file"], "created_at": row["created_at"],
        }

    # -- runs -------------------------------------------------------------------------

    def create_run(
        self,
        *,
        eval_id: str,
        model: str,
        name: str | None,
        data_source: dict | None,
        config: dict,
        rows: Iterable[tuple[int, dict, dict | None, str | None, int | None]],
        metadata: dict | None = None,
    ) -> str:
        """Create a queued run with its items ``(index, item, sample, file, line)``; returns its id."""
        run_id = new_id("evalrun")
        with self.transaction():
            self.conn.execute(
                "INSERT INTO runs (id, eval_id, name, model, status, data_source, config, metadata, created_at,"
                " runner) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                (run_id, eval_id, name, model, _dumps(data_source), _dumps(config), _dumps(metadata),
                 int(time.time()), _dumps(runner_identity())),
            )
            self.conn.executemany(
                "INSERT INTO run_items (run_id, idx, item, shared, sample, source_file, source_line)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((run_id, i, *self._share_item(item), _dumps(sample), f, line) for i, item, sample, f, line in rows),
            )
        return run_id

    def set_run_status(self, run_id: str, status: str, error: dict | None = None) -> None:
        """Move a run to ``status`` (queued, in_progress, completed, canceled, failed); a run
        going ``in_progress`` records this process as its runner."""
        now = time.time()
        with self.transaction():
            if status == "in_progress":
                self.conn.execute(
                    "UPDATE runs SET status = ?, error = NULL, started_at = COALESCE(started_at, ?),"
                    " finished_at = NULL, runner = ? WHERE id = ?", (status, now, _dumps(runner_identity()), run_id))
            else:
                self.conn.execute(
                    "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                    (status, _dumps(error), now, run_id))

    def reap_interrupted(self, run_ids: Iterable[str] | None = None) -> list[str]:
        """Mark the queued or in-progress runs (of ``run_ids``, or all) whose runner process is
        gone (killed, crashed, machine restarted) as ``failed`` with the error code
        ``interrupted`` and the command that resumes them; returns their ids. Runs whose runner
        is alive, ran on another host or is unknown (older stores) are left as they are."""
        rows = self.conn.execute(
            "SELECT id, runner FROM runs WHERE status IN ('queued', 'in_progress') AND runner IS NOT NULL").fetchall()
        wanted = None if run_ids is None else set(run_ids)
        reaped = []
        for row in rows:
            runner = _loads(row["runner"])
            if (wanted is None or row["id"] in wanted) and runner_alive(runner) is False:
                error = {"code": "interrupted", "message": f"the process that ran it (pid {runner.get('pid')}) "
                         f"stopped before it finished; resume with: gradeloop eval resume {row['id']}"}
                with self.transaction():  # unless a resume took it over meanwhile
                    cursor = self.conn.execute(
                        "UPDATE runs SET status = 'failed', error = ?, finished_at = ? WHERE id = ? AND runner = ?"
                        " AND status IN ('queued', 'in_progress')", (_dumps(error), time.time(), row["id"],
                                                                    row["runner"]))
                if cursor.rowcount:
                    reaped.append(row["id"])
        return reaped

    def drop_errored(self, run_id: str) -> int:
        """Forget a run's errored units in one transaction, so that a resume runs them again:
        their output items and scores, and their samples when sampling failed (a sample that
        only failed grading is graded again). Model calls stay as the record of what happened.
        Returns how many output items were dropped."""
        errored = "SELECT idx, epoch FROM output_items WHERE run_id = ? AND status = 'error'"
        with self.transaction():
            self.conn.execute(f"DELETE FROM scores WHERE run_id = ? AND (idx, epoch) IN ({errored})",
                              (run_id, run_id))
            self.conn.execute("DELETE FROM samples WHERE run_id = ? AND status = 'error'", (run_id,))
            return self.conn.execute("DELETE FROM output_items WHERE run_id = ? AND status = 'error'",
                                     (run_id,)).rowcount

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The stored run; ``run_id`` may be a unique prefix (with or without ``evalrun_``)."""
        run_id = self.resolve_run_id(run_id)
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._run_dict(row)

    def resolve_run_id(self, ref: str) -> str:
        """The full id of the run that ``ref`` names (an id or a unique prefix of one)."""
        ref = ref.strip()
        candidates = [ref] if ref.startswith("evalrun_") else [ref, f"evalrun_{ref}"]
        for cand in candidates:
            rows = self.conn.execute(
                "SELECT id FROM runs WHERE id >= ? AND id < ? LIMIT 2", (cand, cand + "\uffff")
            ).fetchall()
            if len(rows) == 1:
                return rows[0]["id"]
            if len(rows) > 1:
                exact = [r["id"] for r in rows if r["id"] == cand]
                if exact:
                    return exact[0]
                raise NotFoundError(f"'{ref}' matches more than one run; give more of the id")
        raise NotFoundError(f"no run with id '{ref}' in {self.path} (see: gradeloop eval list)")

    def list_runs(self, *, limit: int = 50, eval_id: str | None = None, status: str | None = None) -> list[dict]:
        """Runs, newest first."""
        sql, args = "SELECT * FROM runs", []
        where = []
        if eval_id:
            where.append("eval_id = ?")
            args.append(eval_id)
        if status:
            where.append("status = ?")
            args.append(status)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        args.append(limit)
        return [self._run_dict(r) for r in self.conn.execute(sql, args)]

    @staticmethod
    def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
        out = dict(row)
        for key in ("data_source", "config", "metadata", "error", "runner"):
            out[key] = _loads(out[key])
        return out

    def run_items(self, run_id: str) -> list[dict[str, Any]]:
        """The run's items in order: ``{index, item, sample, file, line}``."""
        rows = self.conn.execute(
            "SELECT idx, item, sample, source_file, source_line, shared FROM run_items WHERE run_id = ? ORDER BY idx",
            (run_id,))
        bodies: dict[str, str] = {}
        return [
            {"index": r[0], "item": self.item_value(r[1], r[5], bodies), "sample": _loads(r[2]), "file": r[3],
             "line": r[4]}
            for r in rows
        ]

    # -- units of work ----------------------------------------------------------------

    def finished_units(self, run_id: str) -> set[tuple[int, int]]:
        """``(index, epoch)`` pairs that have an output item (sampled and graded)."""
        return {(r[0], r[1]) for r in self.conn.execute(
            "SELECT idx, epoch FROM output_items WHERE run_id = ?", (run_id,))}

    def samples_without_grades(self, run_id: str) -> dict[tuple[int, int], dict]:
        """Stored samples that have no output item yet (the process stopped while grading)."""
        rows = self.conn.execute(
            "SELECT s.* FROM samples s LEFT JOIN output_items o"
            " ON o.run_id = s.run_id AND o.idx = s.idx AND o.epoch = s.epoch"
            " WHERE s.run_id = ? AND o.id IS NULL", (run_id,))
        return {(r["idx"], r["epoch"]): self._sample_dict(r) for r in rows}

    def record_sample(
        self, run_id: str, index: int, epoch: int, sample: SampleRecord, calls: list[CallRecord],
        cache_response: dict | None = None,
    ) -> None:
        """Store a finished sample, the calls behind it and its cache entry in one transaction."""
        now = time.time()
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO samples (run_id, idx, epoch, status, model, input, output, choices,"
                " finish_reason, prompt_tokens, completion_tokens, cached_tokens, latency_ms, cached,"
                " cache_key, params, error, trajectory, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, index, epoch, sample.status, sample.model, self._share_input(sample.input),
                 _dumps(sample.output), _dumps(sample.choices), sample.finish_reason, sample.prompt_tokens,
                 sample.completion_tokens, sample.cached_tokens, sample.latency_ms, int(sample.cached),
                 sample.cache_key, _dumps(sample.params), _dumps(sample.error), _dumps(sample.trajectory), now),
            )
            self._insert_calls(run_id, index, epoch, calls)
            if cache_response is not None and sample.cache_key:
                self.conn.execute(
                    "INSERT OR IGNORE INTO response_cache VALUES (?, ?, ?)",
                    (sample.cache_key, _dumps(cache_response), now))

    def record_turn(self, run_id: str, index: int, epoch: int, turn: int, body: dict[str, Any],
                    calls: list[CallRecord], cache: list[tuple[str, dict]] = ()) -> None:
        """Store one turn of an agent episode as it happens (the assistant message, its tool calls
        and their results, or the simulated user's message), with the model calls behind it and
        their cache entries ``(key, response)``, in one transaction."""
        now = time.time()
        with self.transaction():
            self.conn.execute("INSERT OR REPLACE INTO turns VALUES (?, ?, ?, ?, ?, ?)",
                              (run_id, index, epoch, turn, _dumps(body), now))
            self._insert_calls(run_id, index, epoch, calls)
            self.conn.executemany("INSERT OR IGNORE INTO response_cache VALUES (?, ?, ?)",
                                  [(key, _dumps(response), now) for key, response in cache])

    def clear_turns(self, run_id: str, index: int, epoch: int) -> None:
        """Forget the stored turns of an episode that starts over (it was cut off by a kill)."""
        with self.transaction():
            self.conn.execute("DELETE FROM turns WHERE run_id = ? AND idx = ? AND epoch = ?", (run_id, index, epoch))

    def turns(self, run_id: str, index: int, epoch: int) -> list[dict[str, Any]]:
        """The stored turns of one episode, in order: ``{"turn": n, **body}``."""
        rows = self.conn.execute("SELECT turn, body FROM turns WHERE run_id = ? AND idx = ? AND epoch = ?"
                                 " ORDER BY turn", (run_id, index, epoch))
        return [{"turn": r[0], **_loads(r[1])} for r in rows]

    def record_calls(self, run_id: str | None, index: int | None, epoch: int | None,
                     calls: list[CallRecord]) -> None:
        """Store model calls made outside sampling (a model grader's judge calls)."""
        if calls:
            with self.transaction():
                self._insert_calls(run_id, index, epoch, calls)

    def _insert_calls(self, run_id: str | None, index: int | None, epoch: int | None,
                      calls: list[CallRecord]) -> None:
        self.conn.executemany(
            "INSERT INTO model_calls (run_id, idx, epoch, purpose, provider, model, base_url, attempt,"
            " status, request, response, error, prompt_tokens, completion_tokens, latency_ms, created_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(run_id, index, epoch, c.purpose, c.provider, c.model, c.base_url, c.attempt, c.status,
              self._share_request(c.request), _dumps(c.response), _dumps(c.error), c.prompt_tokens,
              c.completion_tokens, c.latency_ms, c.created_at) for c in calls],
        )

    def _share_input(self, messages: Any) -> str | None:
        """The JSON to store for a sample's input: long ones go to ``inputs`` once (by content
        hash) and the sample keeps ``{"$input": hash}``, so epochs, retries and models that send
        the same long prompt store it once. Call inside a transaction."""
        text = _dumps(messages)
        if text is None or len(text) < INPUT_SHARE_CHARS:
            return text
        digest = hashlib.sha256(text.encode()).hexdigest()
        self.conn.execute("INSERT OR IGNORE INTO inputs VALUES (?, ?)", (digest, text))
        return _dumps({"$input": digest})

    def _share_item(self, item: Any) -> tuple[str, int]:
        """A run item's JSON and its ``shared`` flag. A long item keeps its structure and its short
        values (so SQL's ``json_extract`` over ``--by`` fields and ``json_each`` over lists of ids
        still work); each long string, and each long list of objects (messages), goes to
        ``inputs`` once by content hash and is replaced by ``{"$input": hash}``: the models and
        epochs of an item, and the sample inputs equal to its messages, share one copy.
        Call inside a transaction."""
        text = _dumps(item)
        if text is None or len(text) < INPUT_SHARE_CHARS or '"$input"' in text:
            return text, 0  # short, or holding what would read as a reference: stored as it is
        slim = self._share_values(item)
        return _dumps(slim), 1

    def _share_values(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._share_text(_dumps(value)) if len(value) >= INPUT_SHARE_CHARS else value
        if not isinstance(value, (dict, list)):
            return value
        text = _dumps(value)
        if len(text) < INPUT_SHARE_CHARS:
            return value
        if isinstance(value, dict):
            return {key: self._share_values(v) for key, v in value.items()}
        if any(isinstance(v, (dict, list)) for v in value):
            return self._share_text(text)
        return [self._share_values(v) for v in value]  # scalars (ids, references): only long strings go

    def _share_text(self, text: str) -> dict[str, str]:
        digest = hashlib.sha256(text.encode()).hexdigest()
        self.conn.execute("INSERT OR IGNORE INTO inputs VALUES (?, ?)", (digest, text))
        return {"$input": digest}

    def item_value(self, text: str | None, shared: int, bodies: dict[str, str] | None = None) -> Any:
        """A stored run item read back whole: ``{"$input": hash}`` references of a ``shared`` row
        replaced by their values (``bodies`` caches the texts across the rows of one read)."""
        value = _loads(text)
        return self._unshare(value, {} if bodies is None else bodies) if shared else value

    def _unshare(self, value: Any, bodies: dict[str, str]) -> Any:
        if isinstance(value, list):
            return [self._unshare(v, bodies) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) != {"$input"}:
            return {key: self._unshare(v, bodies) for key, v in value.items()}
        digest = value["$input"]
        if digest not in bodies:
            row = self.conn.execute("SELECT body FROM inputs WHERE hash = ?", (digest,)).fetchone()
            bodies[digest] = row[0] if row else "null"
        return _loads(bodies[digest])

    def _share_request(self, request: dict | None) -> str | None:
        """A call's request body, its ``messages`` shared as :meth:`_share_input` does."""
        if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
            return _dumps(request)
        shared = _loads(self._share_input(request["messages"]))
        return _dumps({**request, "messages": shared}) if isinstance(shared, dict) else _dumps(request)

    def shared_input(self, value: Any) -> Any:
        """``value`` with a ``{"$input": hash}`` reference replaced by the stored messages."""
        if isinstance(value, dict) and set(value) == {"$input"}:
            row = self.conn.execute("SELECT body FROM inputs WHERE hash = ?", (value["$input"],)).fetchone()
            return _loads(row[0]) if row else None
        return value

    def record_grades(self, run_id: str, index: int, epoch: int, scores: list[ScoreRecord],
                      status: str) -> str:
        """Store an item's scores and its output item (``pass``/``fail``/``error``); returns its id."""
        now = time.time()
        item_id = new_id("outputitem")
        with self.transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(run_id, index, epoch, s.criterion, s.name, s.type, s.grader_hash, s.score,
                  None if s.passed is None else int(s.passed), _dumps(s.result), now) for s in scores],
            )
            self.conn.execute(
                "INSERT INTO output_items VALUES (?, ?, ?, ?, ?, ?)",
                (item_id, run_id, index, epoch, status, int(now)))
        return item_id

    def cache_put(self, key: str, response: dict) -> None:
        """Remember a response under its content address."""
        with self.transaction():
            self.conn.execute("INSERT OR IGNORE INTO response_cache VALUES (?, ?, ?)",
                              (key, _dumps(response), time.time()))

    def cache_get(self, key: str) -> dict | None:
        """The cached response for ``key``, or None."""
        row = self.conn.execute("SELECT response FROM response_cache WHERE key = ?", (key,)).fetchone()
        return _loads(row[0]) if row else None

    def cache_delete(self, key: str) -> None:
        """Forget the cached response for ``key`` (one that no longer makes a sample)."""
        with self.transaction():
            self.conn.execute("DELETE FROM response_cache WHERE key = ?", (key,))

    # -- reading results --------------------------------------------------------------

    def _sample_dict(self, row: sqlite3.Row) -> dict[str, Any]:
        out = dict(row)
        for key in ("input", "output", "choices", "params", "error", "trajectory"):
            out[key] = _loads(out[key])
        out["input"] = self.shared_input(out["input"])
        out["cached"] = bool(out["cached"])
        return out

    def output_items(self, run_id: str, *, status: str | None = None, limit: int | None = None,
                     offset: int = 0) -> list[dict[str, Any]]:
        """Output items joined with their item, sample and scores, in item order."""
        sql = ("SELECT o.id AS oid, o.idx, o.epoch, o.status AS ostatus, o.created_at AS ocreated,"
               " i.item, i.shared, i.sample AS given_sample FROM output_items o JOIN run_items i"
               " ON i.run_id = o.run_id AND i.idx = o.idx WHERE o.run_id = ?")
        args: list[Any] = [run_id]
        if status:
            sql += " AND o.status = ?"
            args.append(status)
        sql += " ORDER BY o.idx, o.epoch"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        rows = self.conn.execute(sql, args).fetchall()
        samples = {(r["idx"], r["epoch"]): self._sample_dict(r) for r in self.conn.execute(
            "SELECT * FROM samples WHERE run_id = ?", (run_id,))}
        scores: dict[tuple[int, int], list[dict]] = {}
        for s in self.conn.execute("SELECT * FROM scores WHERE run_id = ? ORDER BY criterion", (run_id,)):
            d = dict(s)
            d["result"] = _loads(d["result"])
            d["passed"] = None if d["passed"] is None else bool(d["passed"])
            scores.setdefault((s["idx"], s["epoch"]), []).append(d)
        out, bodies = [], {}
        for r in rows:
            key = (r["idx"], r["epoch"])
            out.append({
                "id": r["oid"], "index": r["idx"], "epoch": r["epoch"], "status": r["ostatus"],
                "created_at": r["ocreated"], "item": self.item_value(r["item"], r["shared"], bodies),
                "given_sample": _loads(r["given_sample"]), "sample": samples.get(key),
                "scores": scores.get(key, []),
            })
        return out

    def result_counts(self, run_id: str) -> dict[str, int]:
        """``{total, passed, failed, errored}`` over output items."""
        counts = {"pass": 0, "fail": 0, "error": 0}
        for status, n in self.conn.execute(
                "SELECT status, COUNT(*) FROM output_items WHERE run_id = ? GROUP BY status", (run_id,)):
            counts[status] = n
        return {"total": sum(counts.values()), "errored": counts["error"], "failed": counts["fail"],
                "passed": counts["pass"]}

    def outputs_without_text(self, run_id: str) -> list[dict]:
        """The assistant messages of graded samples whose content is not a non-empty string
        (null, empty, missing or parts): the candidates for an empty output."""
        return [_loads(r[0]) for r in self.conn.execute(
            "SELECT s.output FROM samples s JOIN output_items o ON o.run_id = s.run_id AND o.idx = s.idx"
            " AND o.epoch = s.epoch WHERE s.run_id = ? AND s.status = 'ok' AND"
            " (COALESCE(json_type(s.output, '$.content'), '') != 'text' OR json_extract(s.output, '$.content') = '')",
            (run_id,))]

    def item_outcomes(self, run_id: str) -> dict[int, list[int]]:
        """Per item index, the 0/1 outcome of each graded (not errored) output item, by epoch."""
        out: dict[int, list[int]] = {}
        for idx, status in self.conn.execute(
                "SELECT idx, status FROM output_items WHERE run_id = ? AND status != 'error' ORDER BY idx, epoch",
                (run_id,)):
            out.setdefault(idx, []).append(int(status == "pass"))
        return out

    def counts_by_field(self, run_id: str, field: str) -> dict[Any, dict[str, int]]:
        """Output-item status counts grouped by an item field (``a.b`` for nested fields):
        ``{value: {"pass": n, "fail": n, "error": n}}``; items without the field group under None."""
        path = json_path(field)
        out: dict[Any, dict[str, int]] = {}
        for value, status, n in self.conn.execute(
                "SELECT json_extract(i.item, ?), o.status, COUNT(*) FROM output_items o JOIN run_items i"
                " ON i.run_id = o.run_id AND i.idx = o.idx WHERE o.run_id = ? GROUP BY 1, 2", (path, run_id)):
            out.setdefault(value, {"pass": 0, "fail": 0, "error": 0})[status] = n
        return out

    def criteria_by_field(self, run_id: str, field: str) -> dict[Any, list[dict[str, Any]]]:
        """Per value of an item field (as :meth:`counts_by_field` groups them), each criterion's
        ``{criterion, name, passed, failed, errored, mean_score}``, in criterion order."""
        path = json_path(field)
        out: dict[Any, list[dict[str, Any]]] = {}
        for value, criterion, name, passed, failed, errored, mean in self.conn.execute(
                "SELECT json_extract(i.item, ?), s.criterion, s.name, SUM(s.passed = 1), SUM(s.passed = 0),"
                " SUM(s.passed IS NULL), AVG(s.score) FROM scores s JOIN run_items i ON i.run_id = s.run_id"
                " AND i.idx = s.idx WHERE s.run_id = ? GROUP BY 1, 2 ORDER BY 2", (path, run_id)):
            out.setdefault(value, []).append({"criterion": criterion, "name": name, "passed": passed or 0,
                                              "failed": failed or 0, "errored": errored or 0, "mean_score": mean})
        return out

    def tokens_by_field(self, run_id: str, field: str) -> dict[Any, tuple[int, int]]:
        """Sampled-model tokens (prompt, completion) of a run's answered samples, grouped by an
        item field as :meth:`counts_by_field` groups them; cached samples count nothing."""
        path = json_path(field)
        return {value: (p or 0, c or 0) for value, p, c in self.conn.execute(
            "SELECT json_extract(i.item, ?), SUM(CASE WHEN s.cached = 0 THEN s.prompt_tokens ELSE 0 END),"
            " SUM(CASE WHEN s.cached = 0 THEN s.completion_tokens ELSE 0 END) FROM samples s JOIN run_items i"
            " ON i.run_id = s.run_id AND i.idx = s.idx WHERE s.run_id = ? AND s.status = 'ok' GROUP BY 1",
            (path, run_id))}

    def mean_scores_by_field(self, run_id: str, field: str) -> dict[Any, float | None]:
        """Mean score per value of an item field, grouped as :meth:`counts_by_field` groups: per
        output item the mean of its criteria's scores, then the mean over output items; errored
        output items are left out (a value with only errored items is absent)."""
        path = json_path(field)
        return {value: mean for value, mean in self.conn.execute(
            "SELECT json_extract(i.item, ?), AVG(s.mean) FROM output_items o JOIN run_items i"
            " ON i.run_id = o.run_id AND i.idx = o.idx JOIN (SELECT idx, epoch, AVG(score) AS mean FROM scores"
            " WHERE run_id = ? GROUP BY idx, epoch) s ON s.idx = o.idx AND s.epoch = o.epoch"
            " WHERE o.run_id = ? AND o.status != 'error' GROUP BY 1", (path, run_id, run_id))}

    def score_rates(self, run_id: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """``(criterion, name, rates)`` of every score of the run whose grader reported
        ``details.rates`` (a dict of 0/1 outcomes, such as the grounding grader's)."""
        for criterion, name, rates in self.conn.execute(
                "SELECT criterion, name, json_extract(result, '$.details.rates') FROM scores WHERE run_id = ?"
                " AND json_extract(result, '$.details.rates') IS NOT NULL ORDER BY criterion", (run_id,)):
            yield criterion, name, json.loads(rates)

    def criteria_counts(self, run_id: str) -> list[dict[str, Any]]:
        """Per criterion: ``{criterion, name, type, grader_hash, passed, failed, errored, mean_score}``."""
        rows = self.conn.execute(
            "SELECT criterion, name, type, grader_hash, SUM(passed = 1), SUM(passed = 0),"
            " SUM(passed IS NULL), AVG(score) FROM scores WHERE run_id = ?"
            " GROUP BY criterion ORDER BY criterion", (run_id,))
        return [{"criterion": r[0], "name": r[1], "type": r[2], "grader_hash": r[3], "passed": r[4] or 0,
                 "failed": r[5] or 0, "errored": r[6] or 0, "mean_score": r[7]} for r in rows]

    def usage(self, run_id: str) -> list[dict[str, Any]]:
        """Token usage per model and purpose, from the samples and model calls of a run.

        Only real model calls count as invocations and tokens; samples answered from the
        response cache are counted under ``cached_samples``. Grader usage counts successful calls.
        """
        out = []
        for r in self.conn.execute(
                "SELECT model, SUM(cached = 0), SUM(cached),"
                " SUM(CASE WHEN cached = 0 THEN COALESCE(prompt_tokens, 0) ELSE 0 END),"
                " SUM(CASE WHEN cached = 0 THEN COALESCE(completion_tokens, 0) ELSE 0 END),"
                " SUM(CASE WHEN cached = 0 THEN COALESCE(cached_tokens, 0) ELSE 0 END)"
                " FROM samples WHERE run_id = ? AND status = 'ok' GROUP BY model", (run_id,)):
            out.append({"purpose": "sample", "model": r[0], "invocations": r[1] or 0, "cached_samples": r[2] or 0,
                        "prompt_tokens": r[3] or 0, "completion_tokens": r[4] or 0, "cached_tokens": r[5] or 0})
        for r in self.conn.execute(
                "SELECT provider || '/' || model, COUNT(*), SUM(COALESCE(prompt_tokens, 0)),"
                " SUM(COALESCE(completion_tokens, 0)) FROM model_calls WHERE run_id = ? AND purpose = 'grader'"
                " AND status = 'ok' GROUP BY provider, model", (run_id,)):
            out.append({"purpose": "grader", "model": r[0], "invocations": r[1], "cached_samples": 0,
                        "prompt_tokens": r[2] or 0, "completion_tokens": r[3] or 0, "cached_tokens": 0})
        return out

    def latencies(self, run_id: str) -> list[float]:
        """Latency (ms) of every non-cached sample of a run."""
        return [r[0] for r in self.conn.execute(
            "SELECT latency_ms FROM samples WHERE run_id = ? AND cached = 0 AND status = 'ok'"
            " AND latency_ms IS NOT NULL", (run_id,))]

    def call_counts(self, run_id: str) -> dict[str, int]:
        """Attempts made for a run: ``{calls, failed_attempts}``."""
        r = self.conn.execute(
            "SELECT COUNT(*), SUM(status != 'ok') FROM model_calls WHERE run_id = ?", (run_id,)).fetchone()
        return {"calls": r[0] or 0, "failed_attempts": r[1] or 0}


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]
