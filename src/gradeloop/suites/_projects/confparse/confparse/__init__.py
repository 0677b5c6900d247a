"""Read INI-style settings files and apply command-line overrides."""

from .cli import apply_overrides
from .coerce import to_bool, to_int, to_list
from .parser import ConfigError, parse_config

__all__ = ["ConfigError", "apply_overrides", "parse_config", "to_bool", "to_int", "to_list"]
