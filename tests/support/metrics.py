"""Reading /metrics as Prometheus does: the text format parsed by prometheus_client's parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Return every sample of an exposition by (name, labels)."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    """Return one sample's value, or None when the exposition lacks it."""
    return samples(text).get((name, frozenset(labels.items())))


def names(text: str) -> set[str]:
    """Return the names of every sample in the exposition."""
    return {name for name, _ in samples(text)}
