"""Turn the strings of a settings file into typed values."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def to_bool(value: str) -> bool:
    """``True`` for 1/true/yes/on and ``False`` for 0/false/no/off, in any case."""
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def to_int(value: str) -> int:
    """An integer, allowing ``_`` between digits (``10_000``)."""
    return int(value.strip())


def to_list(value: str, separator: str = ",") -> list:
    """The non-empty, stripped parts of ``value`` split on ``separator``."""
    return [part.strip() for part in value.split(separator) if part.strip()]
