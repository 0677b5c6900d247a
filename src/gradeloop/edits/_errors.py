"""The one exception of the edits package."""

from __future__ import annotations


class EditError(ValueError):
    """An edit that cannot be parsed or applied; ``reason`` says why (one line)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
