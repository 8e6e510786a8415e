# etl-file-processing: the file_processing runtime. By default a Celery worker of the
# file_processing queue (`worker`); every other subcommand runs the same way
# (`docker run --rm etl-file-processing scan`). Build from the repository root:
#   docker build -f docker/file-processing.Dockerfile --build-arg VERSION=0.1.0 -t etl-file-processing .

# Build stage: wheels of the runtime and of every dependency, made by the script the
# packaging test runs too (tests/test_packaging.py).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY docker/wheels.sh docker/wheels.sh
COPY packages/etl_core packages/etl_core
COPY external/etl-database-schema external/etl-database-schema
COPY packages/file_processing packages/file_processing
RUN sh docker/wheels.sh build /wheels "packages/etl_core[celery]" external/etl-database-schema "packages/file_processing[schema]"

# Runtime stage: installed offline from the wheelhouse alone, run as a non-root user.
FROM python:3.11-slim-bookworm
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="etl-file-processing" \
      org.opencontainers.image.description="Inbound vendor files: unpack, decrypt, data-quality analysis, quarantine" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# gnupg decrypts OpenPGP drops; tini is PID 1: it passes `docker stop`'s SIGTERM on and
# reaps the gpg-agents the runtime starts. Debian's packages track security fixes;
# pinning exact versions would break rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gnupg tini \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 etl \
    && useradd --system --uid 10001 --gid etl --home-dir /app --create-home etl \
    && install -d -o etl -g etl /app/data /app/config
COPY docker/wheels.sh /usr/local/lib/etl/wheels.sh
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    sh /usr/local/lib/etl/wheels.sh install /wheels "etl-file-processing[schema]" "etl-core[celery]"
USER 10001:10001
WORKDIR /app
ENV PYTHONUNBUFFERED=1 \
    ETL_STORAGE_URL=file:///app/data \
    ETL_CONFIG_DIR=/app/config
# SIGTERM is a warm shutdown: the objects in hand finish, no new one is taken (give
# `docker stop --time` / compose's stop_grace_period room for the longest unit).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s --retries=3 \
    CMD ["etl-file-processing", "ping", "--timeout", "5"]
ENTRYPOINT ["tini", "--", "etl-file-processing"]
CMD ["worker"]
