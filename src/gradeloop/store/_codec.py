"""JSON columns of the store's mixins: compact text in, values out (None stays NULL)."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> str | None:
    """``value`` as compact JSON (non-JSON values as their text); None for None."""
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def loads(text: str | None) -> Any:
    """The value of a JSON column; None for NULL."""
    return None if text is None else json.loads(text)
