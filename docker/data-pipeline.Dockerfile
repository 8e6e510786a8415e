# etl-data-pipeline: the data_pipeline runtime. Build from the repository root:
#   docker build -f docker/data_pipeline.Dockerfile -t etl-data-pipeline .
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY docker/wheels.sh docker/wheels.sh
COPY packages/etl_core packages/etl_core
COPY external/etl-database-schema external/etl-database-schema
COPY packages/data_pipeline packages/data_pipeline
RUN sh docker/wheels.sh build /wheels packages/etl_core external/etl-database-schema packages/data_pipeline

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="etl-data-pipeline"

RUN groupadd --system --gid 10001 etl \
    && useradd --system --uid 10001 --gid etl --home-dir /app --create-home etl
COPY docker/wheels.sh /usr/local/lib/etl/wheels.sh
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    sh /usr/local/lib/etl/wheels.sh install /wheels "etl-data-pipeline[schema]"
USER 10001:10001
WORKDIR /app
ENV PYTHONUNBUFFERED=1 \
    ETL_STORAGE_URL=file:///app/data \
    ETL_CONFIG_DIR=/app/config
ENTRYPOINT ["etl-data-pipeline"]
CMD ["--help"]
