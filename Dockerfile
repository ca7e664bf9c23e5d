# syntax=docker/dockerfile:1
# Build stage: resolve the locked dependencies into a virtual environment with uv.
FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY bot ./bot
COPY cogs ./cogs
RUN uv sync --locked --no-dev --no-editable

# Runtime stage: only the environment, a non-root user, and the database on a volume.
FROM python:3.11-slim
RUN groupadd --system --gid 10001 musicbot \
    && useradd --system --uid 10001 --gid musicbot --home-dir /app musicbot \
    && mkdir -p /data && chown 10001:10001 /data
COPY --from=build --chown=10001:10001 /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL="sqlite:////data/musicbot.sqlite3"
WORKDIR /app
USER 10001
VOLUME ["/data"]
# With HTTP_PORT set, Docker asks GET /healthz (503 = unhealthy); without it there is nothing to ask.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('HTTP_PORT'); sys.exit(0) if not port else urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
CMD ["musicbot"]
