# syntax=docker/dockerfile:1
# The image an ECS Fargate task runs. Web: the default command. Worker: override
# the command with ["opsbot", "worker"]. Migrations: a one-off task running
# ["opsbot", "db", "upgrade"]. Configuration comes from OPSBOT_* variables
# (secrets from Secrets Manager / SSM parameters in the task definition) and
# the YAML file named by OPSBOT_CONFIG; nothing secret is baked in.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY opsbot ./opsbot
COPY handlers ./handlers
COPY migrations ./migrations
COPY runbooks ./runbooks
RUN python -m venv /opt/opsbot \
    && /opt/opsbot/bin/pip install --no-compile . \
    && /opt/opsbot/bin/pip uninstall -y pip setuptools wheel

FROM python:3.11-slim-bookworm
ENV PATH=/opt/opsbot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OPSBOT_DATA_DIR=/var/lib/opsbot \
    OPSBOT_CONFIG=/etc/opsbot/opsbot.yaml
RUN groupadd --system --gid 10001 opsbot \
    && useradd --system --uid 10001 --gid opsbot --home-dir /var/lib/opsbot --create-home opsbot \
    && mkdir -p /etc/opsbot
COPY --from=build /opt/opsbot /opt/opsbot
WORKDIR /var/lib/opsbot
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]
CMD ["opsbot", "serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"]
