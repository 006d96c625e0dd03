# syntax=docker/dockerfile:1
# The image an ECS Fargate task runs; deploy/terraform/central runs three tasks from it:
#   web        the default command (opsbot serve on 8080); health check GET /healthz
#   worker     command ["opsbot", "worker"]; its own listener serves /healthz and
#              /metrics on OPSBOT_WORKER_PORT (default 9102). Override the check
#              with HEALTHCHECK_URL=http://127.0.0.1:9102/healthz, and set
#              OPSBOT_WORKER_HOST=0.0.0.0 for a scraper outside the container.
#              (ECS ignores HEALTHCHECK; the task definitions carry the same checks.)
#   migrate    one-off command ["opsbot", "db", "upgrade"]
# Configuration comes from OPSBOT_* variables (secrets from Secrets Manager or
# SSM parameters in the task definition) and the YAML file named by
# OPSBOT_CONFIG; nothing secret is baked in.
# The build stage makes the wheel exactly as tests/test_wheel.py does, and the
# image installs that wheel (never the source tree, never an editable install).

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY opsbot ./opsbot
COPY handlers ./handlers
COPY migrations ./migrations
COPY runbooks ./runbooks
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/opsbot \
    && /opt/opsbot/bin/pip install --no-compile /wheels/opsbot-*.whl \
    && /opt/opsbot/bin/pip uninstall -y pip setuptools wheel

FROM python:3.11-slim-bookworm
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="opsbot" \
      org.opencontainers.image.description="Operations desk for multi-account AWS estates" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV PATH=/opt/opsbot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OPSBOT_DATA_DIR=/var/lib/opsbot \
    OPSBOT_CONFIG=/etc/opsbot/opsbot.yaml \
    HEALTHCHECK_URL=http://127.0.0.1:8080/healthz
RUN groupadd --system --gid 10001 opsbot \
    && useradd --system --uid 10001 --gid opsbot --home-dir /var/lib/opsbot --create-home opsbot \
    && mkdir -p /etc/opsbot
COPY --from=build /opt/opsbot /opt/opsbot
WORKDIR /var/lib/opsbot
USER 10001:10001
EXPOSE 8080 9102
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4).status == 200 else 1)"]
CMD ["opsbot", "serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"]
