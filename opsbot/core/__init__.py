"""Pure decisions of opsbot: values and functions with no I/O.

Nothing in this package may import flask, sqlalchemy, jira, slack, boto3 or
any other I/O library; ``tests/test_architecture.py`` keeps it so.
"""
