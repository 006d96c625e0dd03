"""The read-only dashboard at ``/ui``: incidents, timelines, silences, runs, windows, dead rows."""

from opsbot.ui.views import register

__all__ = ["register"]
