"""Fine-tuning jobs, their events and checkpoints in the store (part of :class:`Store`)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..errors import NotFoundError
from ._codec import dumps as _dumps
from ._codec import loads as _loads

__all__ = ["JobsMixin"]


class JobsMixin:
    """Job rows are plain dicts; JSON columns come back decoded."""

    conn: Any

    def transaction(self) -> Any:  # provided by Store
        raise NotImplementedError

    def create_job(self, *, model: str, method: str, training_file: str, validation_file: str | None,
                   hyperparameters: dict, grader: dict | None, options: dict, seed: int, suffix: str | None,
                   metadata: dict | None, output_dir_for: Any) -> dict[str, Any]:
        """Insert a job in ``validating_files``; ``output_dir_for(job_id)`` names its folder."""
        job_id = f"ftjob-{uuid.uuid4().hex[:24]}"
        with self.transaction():
            self.conn.execute(
                "INSERT INTO ft_jobs (id, created_at, status, model, method, training_file, validation_file,"
                " hyperparameters, grader, options, seed, suffix, metadata, output_dir)"
                " VALUES (?, ?, 'validating_files', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, int(time.time()), model, method, training_file, validation_file, _dumps(hyperparameters),
                 _dumps(grader), _dumps(options), seed, suffix, _dumps(metadata), str(output_dir_for(job_id))))
        return self.get_job(job_id)

    def update_job(self, job_id: str, **fields: Any) -> None:
        """Set columns of a job (JSON-encodes ``error``, ``options``, ``metadata``)."""
        for key in ("error", "options", "metadata", "hyperparameters", "grader"):
            if key in fields:
                fields[key] = _dumps(fields[key])
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction():
            self.conn.execute(f"UPDATE ft_jobs SET {sets} WHERE id = ?", (*fields.values(), job_id))

    def get_job(self, ref: str) -> dict[str, Any]:
        """A job by id or unique prefix (with or without ``ftjob-``)."""
        ref = ref.strip()
        if ref.startswith("ft:"):
            ref = ref[3:].split(":")[0]
        for cand in ([ref] if ref.startswith("ftjob-") else [ref, f"ftjob-{ref}"]):
            rows = self.conn.execute("SELECT * FROM ft_jobs WHERE id >= ? AND id < ? LIMIT 2",
                                     (cand, cand + "\uffff")).fetchall()
            exact = [r for r in rows if r["id"] == cand]
            if exact or len(rows) == 1:
                return self._job_dict((exact or rows)[0])
            if len(rows) > 1:
                raise NotFoundError(f"'{ref}' matches more than one fine-tuning job; give more of the id")
        raise NotFoundError(f"no fine-tuning job '{ref}' (see: gradeloop tune list)")

    def list_jobs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Jobs, newest first."""
        rows = self.conn.execute("SELECT * FROM ft_jobs ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,))
        return [self._job_dict(r) for r in rows]

    @staticmethod
    def _job_dict(row: Any) -> dict[str, Any]:
        out = dict(row)
        for key in ("hyperparameters", "grader", "options", "metadata", "error"):
            out[key] = _loads(out[key])
        return out

    def add_job_event(self, job_id: str, message: str, *, level: str = "info", type: str = "message",
                      data: dict | None = None) -> str:
        """Append an event; returns its id."""
        event_id = f"ftevent-{uuid.uuid4().hex[:24]}"
        with self.transaction():
            self.conn.execute(
                "INSERT INTO ft_events (id, job_id, created_at, level, type, message, data) VALUES (?,?,?,?,?,?,?)",
                (event_id, job_id, int(time.time()), level, type, message, _dumps(data)))
        return event_id

    def job_events(self, job_id: str, *, after_seq: int = 0, limit: int | None = None,
                   newest_first: bool = False) -> list[dict[str, Any]]:
        """Events of a job (``seq`` orders them)."""
        sql = "SELECT * FROM ft_events WHERE job_id = ? AND seq > ? ORDER BY seq " + ("DESC" if newest_first else "ASC")
        args: list[Any] = [job_id, after_seq]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [{**dict(r), "data": _loads(r["data"])} for r in self.conn.execute(sql, args)]

    def add_checkpoint(self, job_id: str, step: int, name: str, path: str, metrics: dict) -> str:
        """Record a checkpoint; returns its id."""
        ckpt_id = f"ftckpt-{uuid.uuid4().hex[:24]}"
        with self.transaction():
            self.conn.execute(
                "INSERT INTO ft_checkpoints (id, job_id, created_at, step, name, path, metrics) VALUES (?,?,?,?,?,?,?)",
                (ckpt_id, job_id, int(time.time()), step, name, path, _dumps(metrics)))
        return ckpt_id

    def mark_checkpoint_removed(self, job_id: str, path: str) -> None:
        """A checkpoint's directory was deleted (it fell out of the kept set)."""
        with self.transaction():
            self.conn.execute("UPDATE ft_checkpoints SET removed = 1 WHERE job_id = ? AND path = ?", (job_id, path))

    def job_checkpoints(self, job_id: str, *, include_removed: bool = False) -> list[dict[str, Any]]:
        """Checkpoints of a job, newest step first."""
        sql = "SELECT * FROM ft_checkpoints WHERE job_id = ?" + ("" if include_removed else " AND removed = 0")
        rows = self.conn.execute(sql + " ORDER BY step DESC, created_at DESC", (job_id,))
        return [{**dict(r), "metrics": _loads(r["metrics"]), "removed": bool(r["removed"])} for r in rows]
