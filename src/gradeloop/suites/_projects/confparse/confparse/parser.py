"""Parse ``[section]`` / ``key = value`` text into nested dictionaries."""


class ConfigError(ValueError):
    """A line of a settings file that cannot be read; ``line`` is 1-based."""

    def __init__(self, message: str, line: int):
        super().__init__(f"line {line}: {message}")
        self.line = line


def parse_config(text: str) -> dict:
    """``{section: {key: value}}`` from ``text``; keys before any section go under ``"default"``.

    Blank lines and lines starting with ``#`` or ``;`` are ignored; values are stripped strings.
    """
    config = {"default": {}}
    section = "default"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise ConfigError(f"bad section header {line!r}", number)
            section = line[1:-1].strip()
            config.setdefault(section, {})
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected key = value, got {line!r}", number)
        config[section][key.strip()] = value.strip()
    return config
