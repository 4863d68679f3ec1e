# syntax=docker/dockerfile:1
# cltv service image: dependencies from uv.lock in their own layer, non-root, data as a volume.
# Build: docker build -t cltv .
# Extras (space-separated): --build-arg EXTRAS="postgres" for a PostgreSQL metadata database,
# --build-arg EXTRAS="postgres spark" adds the PySpark engine (the image then needs a JRE too).
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG EXTRAS=""
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /src
# 1) dependencies only (cached while uv.lock is unchanged)
COPY pyproject.toml uv.lock README.md ./
# hadolint ignore=SC2086
RUN extras=""; for e in $EXTRAS; do extras="$extras --extra $e"; done; \
    uv sync --frozen --no-dev --no-install-project $extras
# 2) the project itself
COPY models ./models
COPY cltv_api ./cltv_api
# hadolint ignore=SC2086
RUN extras=""; for e in $EXTRAS; do extras="$extras --extra $e"; done; \
    uv sync --frozen --no-dev $extras

FROM python:${PYTHON_VERSION}-slim AS runtime
RUN groupadd --system --gid 10001 cltv \
    && useradd --system --uid 10001 --gid 10001 --home-dir /srv/cltv cltv \
    && mkdir -p /data /srv/cltv && chown 10001:10001 /data /srv/cltv
COPY --from=build /opt/venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    CLTV_DATA_DIR=/data
VOLUME ["/data"]
USER 10001
WORKDIR /srv/cltv
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
# --no-access-log: share-token pulls carry their secret in the URL path.
CMD ["uvicorn", "cltv_api.main:app", "--host", "0.0.0.0", "--port", "8000", "--workers", "1", "--timeout-graceful-shutdown", "30", "--no-access-log"]
