"""The fuzz suite's settings: deterministic, bounded for CI; a long run by hand with
``OPSBOT_FUZZ_EXAMPLES=10000 pytest tests/fuzz`` (examples per test, per database)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("OPSBOT_FUZZ_EXAMPLES", "40"))

settings.register_profile(
    "opsbot-fuzz",
    max_examples=EXAMPLES,
    derandomize=True,  # the same examples on every run: CI failures reproduce
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one app and database per test, shared by examples
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)
