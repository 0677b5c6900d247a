"""Taking records into the store: redaction first (on by default), then one row per distinct
input conversation, each source position taken once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..store import Store
from ._record import Record
from ._redact import Redactor

__all__ = ["IngestReport", "ingest", "origin_key"]


@dataclass
class IngestReport:
    """What one ingest did: records added, folded into an identical conversation
    (``duplicates``), already taken from the same origin before (``seen``), and skipped
    with why (``(where, reason)``, e.g. ``("logs.jsonl:17", "no messages")``)."""

    added: int = 0
    duplicates: int = 0
    seen: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    record_ids: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: ``took 120 (3 duplicates), 4 already imported, 2 skipped``."""
        took = self.added + self.duplicates
        text = f"took {took} ({self.duplicates} duplicate{'s' if self.duplicates != 1 else ''} of stored ones)"
        return f"{text}, {self.seen} already imported, {len(self.skipped)} skipped"


def origin_key(source: str, origin: str) -> str:
    """The key that makes an origin (``path:line:digest``, a proxy request id) count once."""
    return hashlib.sha256(f"{source}\0{origin}".encode("utf-8")).hexdigest()


def ingest(store: Store, entries: Iterable[tuple[str, Record]], *, source: str,
           redactor: Redactor | None) -> IngestReport:
    """Store ``(origin, record)`` pairs from ``source`` (``proxy``, ``import:chat-jsonl`` …).

    ``redactor`` None stores texts as they came (``--no-redact``); records say whether they
    were redacted. Returns what happened to each.
    """
    report = IngestReport()
    for origin, record in entries:
        if redactor is not None:
            record = redactor.redact_record(record)
        record_id, outcome = store.harvest_add(record.row(source, redacted=redactor is not None),
                                               origin_key=origin_key(source, origin), ref=origin)
        setattr(report, outcome if outcome != "duplicate" else "duplicates",
                getattr(report, outcome if outcome != "duplicate" else "duplicates") + 1)
        report.record_ids.append(record_id)
    return report
