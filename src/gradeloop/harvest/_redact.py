"""Redaction of personal data and secrets before a harvested record is stored.

Each finding is replaced by a typed placeholder (``<EMAIL_1>``, ``<API_KEY_2>``) that stays
the same for the same value within one record (one conversation), so a redacted conversation
still reads coherently ("write to <EMAIL_1> … confirm <EMAIL_1>") and evals built from it keep
their structure. Every string of the record is redacted with one mapping: messages, the answer,
params, the raw bodies, error and metadata.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from ._record import Record

__all__ = ["Redactor", "Finder", "regex_finder"]

# a finder returns (start, end) spans of one kind of finding in a text
Finder = Callable[[str], Iterable[tuple[int, int]]]


def regex_finder(pattern: str | re.Pattern[str], group: int = 0) -> Finder:
    """A finder from a regular expression (the span of ``group`` of each match)."""
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern

    def find(text: str) -> Iterable[tuple[int, int]]:
        return [m.span(group) for m in compiled.finditer(text) if m.group(group)]

    return find


_EMAIL = regex_finder(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![\w-])")
_BEARER = regex_finder(r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{16,})", 1)
_KEY = regex_finder(r"\b(?:sk|pk|rk)-(?:[A-Za-z0-9_-]+-)?[A-Za-z0-9_-]{16,}")


class Redactor:
    """Finds personal data and secrets and replaces them with typed placeholders.

    ``patterns`` are extra regular expressions (each finding becomes ``<CUSTOM_n>``).
    """

    def __init__(self, patterns: Sequence[str] = ()) -> None:
        self.finders: list[tuple[str, Finder]] = [("API_KEY", _KEY), ("BEARER_TOKEN", _BEARER), ("EMAIL", _EMAIL)]
        self.finders += [("CUSTOM", regex_finder(p)) for p in patterns]

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Non-overlapping ``(start, end, kind)`` findings in ``text``; where findings overlap,
        the earlier finder in the list (the more specific kind) wins."""
        taken: list[tuple[int, int, str]] = []
        for kind, find in self.finders:
            for start, end in find(text):
                if start < end and all(end <= s or start >= e for s, e, _ in taken):
                    taken.append((start, end, kind))
        return sorted(taken)

    def redact_text(self, text: str, mapping: dict[tuple[str, str], str] | None = None) -> str:
        """``text`` with every finding replaced; ``mapping`` (value → placeholder, per kind)
        carries the numbering across the texts of one conversation."""
        mapping = {} if mapping is None else mapping
        out, last = [], 0
        for start, end, kind in self.spans(text):
            value = text[start:end]
            if (kind, value) not in mapping:
                count = sum(1 for k, _ in mapping if k == kind)
                mapping[(kind, value)] = f"<{kind}_{count + 1}>"
            out += [text[last:start], mapping[(kind, value)]]
            last = end
        out.append(text[last:])
        return "".join(out)

    def redact_value(self, value: Any, mapping: dict[tuple[str, str], str]) -> Any:
        """Every string inside a JSON-like value redacted (dict keys are kept)."""
        if isinstance(value, str):
            return self.redact_text(value, mapping)
        if isinstance(value, list):
            return [self.redact_value(v, mapping) for v in value]
        if isinstance(value, dict):
            return {k: self.redact_value(v, mapping) for k, v in value.items()}
        return value

    def redact_record(self, record: Record) -> Record:
        """A copy of ``record`` with every text redacted, one placeholder numbering for all of it."""
        mapping: dict[tuple[str, str], str] = {}
        fields = ("messages", "output", "params", "request", "response", "error", "metadata")
        return replace(record, **{name: self.redact_value(getattr(record, name), mapping) for name in fields})
