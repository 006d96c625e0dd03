"""Probes for processes without the web app: the worker's own ``/healthz`` and ``/metrics``."""

from opsbot.probes.listener import ProbeListener

__all__ = ["ProbeListener"]
