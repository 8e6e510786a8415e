"""The metrics of API ingestion (``etl_data_pipeline_api_*``)."""

from __future__ import annotations

from etl_core.metrics import counter, histogram

__all__ = [
    "bytes_received",
    "dead_letters",
    "pages",
    "pages_unread",
    "rate_limit_wait",
    "records_landed",
    "request_seconds",
    "requests",
    "retries",
]

requests = counter(
    "etl_data_pipeline_api_requests_total",
    "API requests by endpoint and HTTP status (or 'error' when no response came).",
    ["source", "endpoint", "status"],
)
retries = counter(
    "etl_data_pipeline_api_retries_total",
    "API requests tried again after a timeout, connection error, 429 or 5xx.",
    ["source", "endpoint"],
)
rate_limit_wait = counter(
    "etl_data_pipeline_api_rate_limit_wait_seconds_total",
    "Seconds spent waiting for the source's rate limit or a Retry-After.",
    ["source"],
)
pages = counter(
    "etl_data_pipeline_api_pages_total", "API response pages archived.", ["source", "endpoint"]
)
records_landed = counter(
    "etl_data_pipeline_api_records_total", "API records landed.", ["source", "endpoint"]
)
bytes_received = counter(
    "etl_data_pipeline_api_bytes_total", "API response body bytes received.", ["source", "endpoint"]
)
request_seconds = histogram(
    "etl_data_pipeline_api_request_seconds",
    "Latency of API requests (seconds).",
    ["source", "endpoint"],
)
dead_letters = counter(
    "etl_data_pipeline_api_dead_letters_total",
    "API pages and items set aside as dead letters, by reason.",
    ["source", "endpoint", "reason"],
)
pages_unread = counter(
    "etl_data_pipeline_api_pages_unread_total",
    "API pages set aside unread (not JSON, no records array) that a completed window went "
    "past: their records were never landed.",
    ["source", "endpoint"],
)
