"""Read-only access and keyset-paged reads of a run's output items (part of :class:`Store`).

Every read here touches only the rows it returns: pages are ``idx > after ORDER BY idx LIMIT n``
on the output items' unique key, never an OFFSET over the table, and samples and scores are
fetched for just the rows of the page.
"""

from __future__ import annotations

from typing import Any

from ._codec import loads as _loads

__all__ = ["PagesMixin"]


def json_path(field: str) -> str:
    """``a.b`` → the SQLite JSON path ``$."a"."b"``."""
    return "$" + "".join(f'."{part}"' for part in field.split("."))


class PagesMixin:
    """Keyset pages of output items, one item's whole record, and its model calls."""

    conn: Any

    def _sample_dict(self, row: Any) -> dict[str, Any]:  # provided by Store
        raise NotImplementedError

    def item_value(self, text: str | None, shared: int, bodies: dict[str, str] | None = None) -> Any:
        """A stored run item read back whole (provided by Store)."""
        raise NotImplementedError

    def output_items_page(self, run_id: str, *, after: tuple[int, int] = (-1, -1), limit: int = 50,
                          status: str | None = None, field: str | None = None, value: Any = None,
                          search: str | None = None) -> list[dict[str, Any]]:
        """Up to ``limit`` output items whose ``(index, epoch)`` comes after ``after``, in key
        order, with their item, sample and scores: ``{id, index, epoch, status, item, sample,
        scores}``. ``status`` keeps pass/fail/error; ``field``/``value`` keep items whose field
        (``a.b`` for nested ones) equals ``value`` (compared as text); ``search`` keeps items whose
        item or output contains the text (case-insensitive)."""
        sql = ("SELECT o.id AS oid, o.idx, o.epoch, o.status AS ostatus, o.created_at AS ocreated, i.item, i.shared"
               " FROM output_items o JOIN run_items i ON i.run_id = o.run_id AND i.idx = o.idx"
               " WHERE o.run_id = ? AND (o.idx, o.epoch) > (?, ?)")
        args: list[Any] = [run_id, after[0], after[1]]
        if status:
            sql += " AND o.status = ?"
            args.append(status)
        if field:
            sql += " AND CAST(json_extract(i.item, ?) AS TEXT) IS ?"
            args += [json_path(field), None if value is None else str(value)]
        if search:  # the item's text includes the long values it shares through ``inputs``
            sql += (" AND (instr(lower(i.item), ?) > 0 OR (i.shared AND EXISTS (SELECT 1 FROM json_tree(i.item) t"
                    " JOIN inputs n ON n.hash = t.value WHERE t.key = '$input' AND instr(lower(n.body), ?) > 0))"
                    " OR EXISTS (SELECT 1 FROM samples s WHERE s.run_id = o.run_id"
                    " AND s.idx = o.idx AND s.epoch = o.epoch AND instr(lower(COALESCE(s.output, '')), ?) > 0))")
            args += [search.lower(), search.lower(), search.lower()]
        rows = self.conn.execute(sql + " ORDER BY o.idx, o.epoch LIMIT ?", (*args, limit)).fetchall()
        return self._with_samples_and_scores(run_id, rows)

    def _with_samples_and_scores(self, run_id: str, rows: list[Any]) -> list[dict[str, Any]]:
        if not rows:
            return []
        keys = [(r["idx"], r["epoch"]) for r in rows]
        wanted, bodies = set(keys), {}
        indexes = sorted({k[0] for k in keys})
        marks = ",".join("?" * len(indexes))  # IN on the (run_id, idx, epoch) keys: one index probe per item
        samples = {(s["idx"], s["epoch"]): self._sample_dict(s) for s in self.conn.execute(
            f"SELECT * FROM samples WHERE run_id = ? AND idx IN ({marks})", (run_id, *indexes))
            if (s["idx"], s["epoch"]) in wanted}
        scores: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for s in self.conn.execute(f"SELECT * FROM scores WHERE run_id = ? AND idx IN ({marks})"
                                   " ORDER BY idx, epoch, criterion", (run_id, *indexes)):
            if (s["idx"], s["epoch"]) in wanted:
                d = {**dict(s), "result": _loads(s["result"])}
                d["passed"] = None if d["passed"] is None else bool(d["passed"])
                scores.setdefault((s["idx"], s["epoch"]), []).append(d)
        return [{"id": r["oid"], "index": r["idx"], "epoch": r["epoch"], "status": r["ostatus"],
                 "created_at": r["ocreated"], "item": self.item_value(r["item"], r["shared"], bodies),
                 "sample": samples.get(k),
                 "scores": scores.get(k, [])} for r, k in zip(rows, keys)]

    def output_item_at(self, run_id: str, index: int, epoch: int = 0) -> dict[str, Any] | None:
        """One output item (as :meth:`output_items_page` gives them) with the given sample of the
        item (``given_sample``), or None when there is none at ``(index, epoch)``."""
        page = self.output_items_page(run_id, after=(index, epoch - 1), limit=1)
        if not page or (page[0]["index"], page[0]["epoch"]) != (index, epoch):
            return None
        row = self.conn.execute("SELECT sample FROM run_items WHERE run_id = ? AND idx = ?", (run_id, index)).fetchone()
        return {**page[0], "given_sample": _loads(row[0]) if row else None}

    def model_calls(self, run_id: str, index: int, epoch: int) -> list[dict[str, Any]]:
        """The model calls (sampling and judges, every attempt) made for one output item, in order."""
        rows = self.conn.execute(
            "SELECT * FROM model_calls WHERE run_id = ? AND idx = ? AND epoch = ? ORDER BY id", (run_id, index, epoch))
        return [self._call_dict(r) for r in rows]

    def _call_dict(self, row: Any) -> dict[str, Any]:
        out = {**dict(row), **{k: _loads(row[k]) for k in ("request", "response", "error")}}
        if isinstance(out["request"], dict) and "messages" in out["request"]:  # a long input is stored once
            out["request"] = {**out["request"], "messages": self.shared_input(out["request"]["messages"])}
        return out

    def field_values(self, run_id: str, field: str, *, limit: int = 50) -> list[Any]:
        """Up to ``limit`` distinct values of an item field in a run, sorted."""
        rows = self.conn.execute("SELECT DISTINCT json_extract(item, ?) AS v FROM run_items WHERE run_id = ?"
                                 " ORDER BY v LIMIT ?", (json_path(field), run_id, limit))
        return [r[0] for r in rows]

    def distinct_counts(self, run_id: str, fields: list[str], *, first: int = 2000) -> dict[str, int]:
        """How many distinct values each item field takes in the run's first ``first`` items."""
        if not fields:
            return {}
        cols = ", ".join("COUNT(DISTINCT json_extract(item, ?))" for _ in fields)
        row = self.conn.execute(f"SELECT {cols} FROM (SELECT item FROM run_items WHERE run_id = ? ORDER BY idx"
                                " LIMIT ?)", (*[json_path(f) for f in fields], run_id, first)).fetchone()
        return dict(zip(fields, row))

    def counts_by_fields(self, run_id: str, fields: list[str]) -> dict[str, dict[Any, dict[str, int]]]:
        """:meth:`Store.counts_by_field` for several fields in one pass over the output items:
        ``{field: {value: {"pass": n, "fail": n, "error": n}}}``."""
        out: dict[str, dict[Any, dict[str, int]]] = {f: {} for f in fields}
        if not fields:
            return out
        cols = ", ".join("json_extract(i.item, ?)" for _ in fields)
        groups = ", ".join(str(n) for n in range(1, len(fields) + 2))
        for row in self.conn.execute(
                f"SELECT {cols}, o.status, COUNT(*) FROM output_items o JOIN run_items i ON i.run_id = o.run_id"
                f" AND i.idx = o.idx WHERE o.run_id = ? GROUP BY {groups}", (*[json_path(f) for f in fields], run_id)):
            for field, value in zip(fields, row):
                counts = out[field].setdefault(value, {"pass": 0, "fail": 0, "error": 0})
                counts[row[-2]] += row[-1]
        return out

    def item_pass_counts(self, run_id: str) -> list[tuple[int, int]]:
        """Per item with a graded (not errored) output item: ``(passed, graded)`` over its epochs."""
        return [(r[0], r[1]) for r in self.conn.execute(
            "SELECT SUM(status = 'pass'), COUNT(*) FROM output_items WHERE run_id = ? AND status != 'error'"
            " GROUP BY idx", (run_id,))]

    def score_values(self, run_id: str) -> dict[str, list[float]]:
        """Per criterion name, the scores it gave in a run (errored ones left out)."""
        out: dict[str, list[float]] = {}
        for name, score in self.conn.execute(
                "SELECT name, score FROM scores WHERE run_id = ? AND score IS NOT NULL ORDER BY criterion", (run_id,)):
            out.setdefault(name, []).append(score)
        return out
