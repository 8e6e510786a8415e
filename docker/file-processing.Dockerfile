# etl-file-processing: the file_processing runtime. Build from the repository root:
#   docker build -f docker/file_processing.Dockerfile -t etl-file-processing .
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY docker/wheels.sh docker/wheels.sh
COPY packages/etl_core packages/etl_core
COPY external/etl-database-schema external/etl-database-schema
COPY packages/file_processing packages/file_processing
RUN sh docker/wheels.sh build /wheels packages/etl_core external/etl-database-schema packages/file_processing

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="etl-file-processing"
# Debian's packages track security fixes; pinning exact versions would break rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gnupg \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 etl \
    && useradd --system --uid 10001 --gid etl --home-dir /app --create-home etl
COPY docker/wheels.sh /usr/local/lib/etl/wheels.sh
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    sh /usr/local/lib/etl/wheels.sh install /wheels "etl-file-processing[schema]"
USER 10001:10001
WORKDIR /app
ENV PYTHONUNBUFFERED=1 \
    ETL_STORAGE_URL=file:///app/data \
    ETL_CONFIG_DIR=/app/config
ENTRYPOINT ["etl-file-processing"]
CMD ["--help"]
