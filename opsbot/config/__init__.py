"""Configuration: OPSBOT_* settings, the line-aware YAML reader and the policy file."""

from opsbot.config.policy import (
    load_policy,
    match_from_mapping,
    match_to_mapping,
    parse_policy,
    silence_from_row,
)
from opsbot.config.settings import Settings, load_settings
from opsbot.config.yamldoc import ConfigError

__all__ = [
    "ConfigError",
    "Settings",
    "load_policy",
    "load_settings",
    "match_from_mapping",
    "match_to_mapping",
    "parse_policy",
    "silence_from_row",
]
