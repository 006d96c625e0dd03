"""Configuration: OPSBOT_* settings and the YAML policy file."""

from opsbot.config.settings import (
    ConfigError,
    KeyPath,
    Settings,
    _Document,
    _keys,
    _syntax_error,
    load_policy,
    match_from_mapping,
    match_to_mapping,
    parse_policy,
    silence_from_row,
)

__all__ = [
    "ConfigError",
    "KeyPath",
    "Settings",
    "_Document",
    "_keys",
    "_syntax_error",
    "load_policy",
    "match_from_mapping",
    "match_to_mapping",
    "parse_policy",
    "silence_from_row",
]
