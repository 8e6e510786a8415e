# etl-observability: the observability runtime. By default the status service
# (`serve`: /metrics, /healthz, /readyz, /api/status and the status page on port
# 9108); every other subcommand runs the same way (`worker`, `check`, `inventory`).
# Build from the repository root:
#   docker build -f docker/observability.Dockerfile --build-arg VERSION=0.1.0 -t etl-observability .

# Build stage: wheels of the runtime and of every dependency, made by the script the
# packaging test runs too (tests/test_packaging.py).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY docker/wheels.sh docker/wheels.sh
COPY packages/etl_core packages/etl_core
COPY external/etl-database-schema external/etl-database-schema
COPY packages/observability packages/observability
RUN sh docker/wheels.sh build /wheels "packages/etl_core[celery]" external/etl-database-schema "packages/observability[schema]"

# Runtime stage: installed offline from the wheelhouse alone, run as a non-root user.
FROM python:3.11-slim-bookworm
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="etl-observability" \
      org.opencontainers.image.description="Storage and database metrics, freshness monitors, alerts, the status service" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# tini is PID 1: it passes `docker stop`'s SIGTERM on and reaps orphaned processes.
# Debian's packages track security fixes; pinning exact versions would break rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 etl \
    && useradd --system --uid 10001 --gid etl --home-dir /app --create-home etl \
    && install -d -o etl -g etl /app/data /app/config
COPY docker/wheels.sh /usr/local/lib/etl/wheels.sh
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    sh /usr/local/lib/etl/wheels.sh install /wheels "etl-observability[schema]" "etl-core[celery]"
USER 10001:10001
WORKDIR /app
ENV PYTHONUNBUFFERED=1 \
    ETL_STORAGE_URL=file:///app/data \
    ETL_CONFIG_DIR=/app/config \
    ETL_SERVE_HOST=0.0.0.0
# No ETL_SERVE_PORT: serve_port of etl.toml (ETL_SETTINGS_FILE or /app/config/etl.toml)
# applies, else 9108; a variable here would override the file. An empty ETL_SERVE_HOST
# leaves etl.toml's serve_host in force too.
EXPOSE 9108
# SIGTERM stops `serve` after the requests in flight (a worker: a warm shutdown).
STOPSIGNAL SIGTERM
# /healthz of `serve` at the address it reads from the same settings (ETL_SERVE_HOST /
# ETL_SERVE_PORT, etl.toml, default; 0.0.0.0 is asked on 127.0.0.1). The check does not
# see flags given to `serve` (`serve --port`): set the port by variable or in etl.toml.
# A container running another subcommand (`worker`) sets its own check (compose: `ping`).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["etl-observability", "serve-ping", "--timeout", "5"]
ENTRYPOINT ["tini", "--", "etl-observability"]
CMD ["serve"]
