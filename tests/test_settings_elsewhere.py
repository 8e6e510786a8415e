"""One environment serves every lane: a setting of one lane is no misspelling in another."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from data_pipeline.settings import PipelineSettings
from etl_core.runtime import RuntimeSettings, load_runtime_settings
from observability.settings import ObservabilitySettings


@pytest.mark.parametrize(
    ("cls", "lane", "variable"),
    [
        (PipelineSettings, "data_pipeline", "ETL_SQS_ENDPOINT_URL"),  # file_processing listen
        (ObservabilitySettings, "observability", "ETL_SCHEDULE_SCAN_INTERVAL"),
        (RuntimeSettings, None, "ETL_SQS_ENDPOINT_URL"),  # make run's own settings
    ],
)
def test_another_lanes_setting_is_not_warned_about(
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    cls: type[RuntimeSettings],
    lane: str | None,
    variable: str,
) -> None:
    """It was: 'ignoring environment variable ETL_SQS_ENDPOINT_URL: it sets no field of
    PipelineSettings; did you mean ETL_S3_ENDPOINT_URL?', at every start of the lane."""
    env = {
        variable: "http://127.0.0.1:9324",
        "ETL_S3_ENDPOINT_URLL": "http://127.0.0.1:9000",  # a misspelling still is one
        "ETL_CONFIG_DIR": str(tmp_path),  # no etl.toml
    }
    with caplog.at_level(logging.WARNING, logger="etl_core.config"):
        load_runtime_settings(cls, env=env, lane=lane)
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring environment variable ETL_S3_ENDPOINT_URLL: it sets no field of "
        f"{cls.__name__}; did you mean ETL_S3_ENDPOINT_URL?"
    ]
