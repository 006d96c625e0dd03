"""Package discovery: every package below opsbot/ and handlers/ is found, never listed by hand.

The migrations and the bundled runbooks sit at the top of the repository (where Alembic and
operators expect them) and install inside opsbot; pyproject.toml maps their directories.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["opsbot", "opsbot.*", "handlers", "handlers.*"]),
        "opsbot.migrations",
        "opsbot.migrations.versions",
        "opsbot.bundled_runbooks",
    ],
)
