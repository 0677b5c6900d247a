"""Command-line overrides: ``--set section.key=value``."""

from .parser import ConfigError


def parse_override(text: str) -> tuple:
    """``"db.port=5432"`` → ``("db", "port", "5432")``; a key without a dot is in ``"default"``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"override must be name=value, got {text!r}", 0)
    section, dot, key = name.strip().rpartition(".")
    return (section if dot else "default"), key, value.strip()


def apply_overrides(config: dict, argv: list) -> dict:
    """A copy of ``config`` with every ``--set NAME=VALUE`` in ``argv`` applied, in order."""
    result = {section: dict(values) for section, values in config.items()}
    args = iter(argv)
    for arg in args:
        if arg == "--set":
            section, key, value = parse_override(next(args, ""))
            result.setdefault(section, {})[key] = value
    return result
