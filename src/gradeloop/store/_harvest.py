"""Harvested traffic in the store (part of :class:`Store`): records of real model calls, where
each came from, use-case clusters and the dataset versions built from them.

A record is one exchange (the messages sent, the answer, timings, usage). Records with the
same input conversation are one row with ``occurrences`` counting them; ``harvest_origins``
remembers every source position already taken (a proxy request id, ``file:line`` of an
import), so importing the same file twice adds nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

from ..errors import NotFoundError
from ._codec import dumps as _dumps
from ._codec import loads as _loads

__all__ = ["HarvestMixin", "HARVEST_JSON_COLUMNS"]

HARVEST_JSON_COLUMNS = ("tags", "messages", "output", "params", "request", "response", "error", "metadata")
_COLUMNS = ("source", "api", "tags", "created_at", "model", "messages", "output", "params", "request", "response",
            "status", "error", "latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens", "feedback",
            "metadata", "redacted", "content_hash")


class HarvestMixin:
    """Harvest rows are plain dicts; JSON columns come back decoded."""

    conn: Any

    def transaction(self) -> Any:  # provided by Store
        raise NotImplementedError

    def harvest_add(self, row: dict[str, Any], *, origin_key: str, ref: str | None) -> tuple[str, str]:
        """Store one record (``row`` holds the ``harvest_records`` columns) unless its origin
        was taken before. Returns ``(record_id, outcome)``: ``added``; ``duplicate`` (the same
        input conversation is stored already: its ``occurrences`` grew); ``seen`` (this origin
        was imported before: nothing changed)."""
        with self.transaction():
            seen = self.conn.execute("SELECT record_id FROM harvest_origins WHERE origin_key = ?",
                                     (origin_key,)).fetchone()
            if seen:
                return seen[0], "seen"
            twin = self.conn.execute("SELECT id FROM harvest_records WHERE content_hash = ? AND near_dup_of IS NULL"
                                     " ORDER BY seq LIMIT 1", (row["content_hash"],)).fetchone()
            if twin:
                record_id, outcome = twin[0], "duplicate"
                self.conn.execute("UPDATE harvest_records SET occurrences = occurrences + 1 WHERE id = ?",
                                  (record_id,))
            else:
                record_id, outcome = f"hrec_{uuid.uuid4().hex[:24]}", "added"
                values = [_dumps(row.get(c)) if c in HARVEST_JSON_COLUMNS else row.get(c) for c in _COLUMNS]
                self.conn.execute(
                    f"INSERT INTO harvest_records (id, imported_at, {', '.join(_COLUMNS)})"
                    f" VALUES (?, ?, {', '.join('?' * len(_COLUMNS))})", [record_id, time.time(), *values])
            self.conn.execute("INSERT INTO harvest_origins VALUES (?, ?, ?, ?, ?)",
                              (origin_key, record_id, row["source"], ref, time.time()))
        return record_id, outcome

    def harvest_origin_record(self, origin_key: str) -> str | None:
        """The id of the record an origin was taken into, or None when it never was."""
        row = self.conn.execute("SELECT record_id FROM harvest_origins WHERE origin_key = ?", (origin_key,)).fetchone()
        return None if row is None else row[0]

    def harvest_records(self, *, source: str | None = None, tag: str | None = None, cluster_id: int | None = None,
                        after_seq: int = 0, limit: int | None = None,
                        include_near_dups: bool = False) -> list[dict[str, Any]]:
        """Records in the order they were stored (``seq``), paged by key: those after ``after_seq``."""
        sql, args = "SELECT * FROM harvest_records WHERE seq > ?", [after_seq]
        if source:
            sql += " AND source = ?"
            args.append(source)
        if tag:
            sql += " AND EXISTS (SELECT 1 FROM json_each(tags) WHERE value = ?)"
            args.append(tag)
        if cluster_id is not None:
            sql += " AND cluster_id = ?"
            args.append(cluster_id)
        if not include_near_dups:
            sql += " AND near_dup_of IS NULL"
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [self._harvest_dict(r) for r in self.conn.execute(sql, args)]

    def harvest_record(self, record_id: str) -> dict[str, Any]:
        """One record by id."""
        row = self.conn.execute("SELECT * FROM harvest_records WHERE id = ?", (record_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no harvested record with id '{record_id}'")
        return self._harvest_dict(row)

    @staticmethod
    def _harvest_dict(row: Any) -> dict[str, Any]:
        out = dict(row)
        for key in HARVEST_JSON_COLUMNS:
            out[key] = _loads(out[key])
        out["redacted"] = bool(out["redacted"])
        return out

    def harvest_sources(self) -> list[dict[str, Any]]:
        """Per source and tag: records, occurrences, first and last time seen, errors."""
        rows = self.conn.execute(
            "SELECT r.source, t.value, COUNT(*), SUM(r.occurrences), MIN(r.created_at), MAX(r.created_at),"
            " SUM(r.error IS NOT NULL OR COALESCE(r.status, 200) >= 400)"
            " FROM harvest_records r LEFT JOIN json_each(r.tags) t WHERE r.near_dup_of IS NULL"
            " GROUP BY r.source, t.value ORDER BY r.source, t.value")
        return [{"source": r[0], "tag": r[1], "records": r[2], "occurrences": r[3], "first": r[4], "last": r[5],
                 "errors": r[6] or 0} for r in rows]

    def harvest_set_feedback(self, record_id: str, value: float) -> None:
        """Set a record's feedback (-1 bad … 1 good)."""
        with self.transaction():
            cur = self.conn.execute("UPDATE harvest_records SET feedback = ? WHERE id = ?", (value, record_id))
            if cur.rowcount == 0:
                raise NotFoundError(f"no harvested record with id '{record_id}'")

    def harvest_mark_near_dups(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Fold each ``(record_id, kept_id)``: the record becomes a near duplicate of the kept one,
        whose ``occurrences`` grows by the record's. Returns how many were folded."""
        folded = 0
        with self.transaction():
            for record_id, kept_id in pairs:
                row = self.conn.execute("SELECT occurrences FROM harvest_records WHERE id = ? AND near_dup_of IS NULL",
                                        (record_id,)).fetchone()
                if row is None or record_id == kept_id:
                    continue
                self.conn.execute("UPDATE harvest_records SET near_dup_of = ? WHERE id = ?", (kept_id, record_id))
                self.conn.execute("UPDATE harvest_records SET occurrences = occurrences + ? WHERE id = ?",
                                  (row[0], kept_id))
                folded += 1
        return folded

    def harvest_assign_clusters(self, templates: dict[str, str], keys: dict[str, str]) -> dict[str, int]:
        """Put records in clusters: ``keys`` maps record id → cluster key, ``templates`` maps
        cluster key → its template text. Clusters are kept by key across calls (ids stay stable).
        Returns cluster key → cluster id."""
        ids: dict[str, int] = {}
        with self.transaction():
            for key, template in templates.items():
                self.conn.execute("INSERT INTO harvest_clusters (key, template, created_at) VALUES (?, ?, ?)"
                                  " ON CONFLICT(key) DO UPDATE SET template = excluded.template",
                                  (key, template, time.time()))
                ids[key] = self.conn.execute("SELECT id FROM harvest_clusters WHERE key = ?", (key,)).fetchone()[0]
            self.conn.executemany("UPDATE harvest_records SET cluster_id = ? WHERE id = ?",
                                  [(ids[key], record_id) for record_id, key in keys.items()])
        return ids

    def harvest_clusters(self) -> list[dict[str, Any]]:
        """Clusters with their records' numbers: count, occurrences, models, date range, errors, feedback."""
        rows = self.conn.execute(
            "SELECT c.id, c.key, c.template, COUNT(r.id), SUM(r.occurrences), MIN(r.created_at), MAX(r.created_at),"
            " SUM(r.error IS NOT NULL OR COALESCE(r.status, 200) >= 400), SUM(r.feedback IS NOT NULL),"
            " SUM(r.feedback < 0), json_group_array(DISTINCT r.model)"
            " FROM harvest_clusters c LEFT JOIN harvest_records r ON r.cluster_id = c.id AND r.near_dup_of IS NULL"
            " GROUP BY c.id ORDER BY COUNT(r.id) DESC, c.id")
        return [{"id": r[0], "key": r[1], "template": r[2], "records": r[3], "occurrences": r[4] or 0,
                 "first": r[5], "last": r[6], "errors": r[7] or 0, "with_feedback": r[8] or 0,
                 "negative_feedback": r[9] or 0, "models": sorted(m for m in json.loads(r[10]) if m)}
                for r in rows]

    def harvest_unclustered(self) -> list[dict[str, Any]]:
        """The records no clustering has seen yet (``cluster_id`` unset), in stored order:
        ``{id, seq, messages, params}`` each."""
        rows = self.conn.execute("SELECT id, seq, messages, params FROM harvest_records WHERE cluster_id IS NULL"
                                 " ORDER BY seq")
        return [{"id": r[0], "seq": r[1], "messages": _loads(r[2]), "params": _loads(r[3])} for r in rows]

    def harvest_failed_in_runs(self) -> set[str]:
        """Ids of the records that an eval run item names in ``provenance.record_id`` (or
        ``provenance.record_ids``) and whose output item failed a criterion (status ``fail``)."""
        rows = self.conn.execute(
            "SELECT json_extract(i.item, '$.provenance.record_id') FROM output_items o JOIN run_items i"
            " ON i.run_id = o.run_id AND i.idx = o.idx WHERE o.status = 'fail'"
            " UNION SELECT j.value FROM output_items o JOIN run_items i ON i.run_id = o.run_id AND i.idx = o.idx,"
            " json_each(i.item, '$.provenance.record_ids') j WHERE o.status = 'fail'")
        return {r[0] for r in rows if isinstance(r[0], str)}

    def add_dataset(self, *, name: str, content_hash: str, path: str | None, provenance: dict[str, Any]) -> str:
        """Store a built dataset version (deduplicated by content); returns its id (``ds_`` + hash prefix)."""
        row = self.conn.execute("SELECT id FROM datasets WHERE content_hash = ?", (content_hash,)).fetchone()
        if row:
            return row[0]
        dataset_id = f"ds_{content_hash[:16]}"
        with self.transaction():
            self.conn.execute("INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?)",
                              (dataset_id, name, content_hash, path, _dumps(provenance), time.time()))
        return dataset_id

    def get_dataset(self, dataset_id: str) -> dict[str, Any]:
        """A dataset version by id."""
        row = self.conn.execute("SELECT * FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no dataset with id '{dataset_id}'")
        out = dict(row)
        out["provenance"] = _loads(out["provenance"])
        return out
