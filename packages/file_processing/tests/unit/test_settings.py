"""The file lane's settings: claims, engine threads and limits no scan can keep are refused
at start-up, naming the setting, instead of running on or failing file by file."""

from __future__ import annotations

import re

import pytest

from etl_core.errors import ConfigError
from etl_core.runtime import load_runtime_settings
from file_processing.settings import FileProcessingSettings


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"ETL_CLAIM_TIMEOUT": "0"}, "claim_timeout: must be longer than 0s, got 0s"),
        ({"ETL_LISTEN_VISIBILITY_TIMEOUT": "13h"}, "to 12h (SQS's range), got 46800s"),
        ({"ETL_QUALITY_THREADS": "-1"}, "quality_threads: must be 0 (a share of the cores) or"),
        ({"ETL_QUALITY_MEMORY_LIMIT": "0"}, "quality_memory_limit: must be above 0 bytes"),
        ({"ETL_JSON_MAX_DEPTH": "0"}, "json_max_depth: must be at least 1, got 0"),
        ({"ETL_MAX_DEPTH": "0"}, "max_depth: must be a positive number, got 0 (from env"),
        ({"ETL_MAX_RATIO": "0"}, "max_ratio: must be a positive number, got 0 (from env"),
        ({"ETL_MAX_ENTRIES": "-1"}, "max_entries: must be a positive number, got -1 (from"),
        ({"ETL_MAX_MEMBER_BYTES": "0"}, "max_member_bytes: must be a positive number, got 0"),
        ({"ETL_MAX_TOTAL_BYTES": "0"}, "max_total_bytes: must be a positive number, got 0"),
    ],
)
def test_a_setting_no_scan_can_keep_is_refused_naming_it(env: dict[str, str], said: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_runtime_settings(FileProcessingSettings, {}, env=env)


def test_the_defaults_are_kept() -> None:
    settings, _ = load_runtime_settings(FileProcessingSettings, {}, env={})
    assert settings.quality_threads == 0
    assert settings.claim_timeout.total_seconds() == 3600


def test_a_zero_visibility_timeout_is_kept_as_sqs_reads_it() -> None:
    env = {"ETL_LISTEN_VISIBILITY_TIMEOUT": "0s"}  # visible again at once: a valid SQS value
    settings, _ = load_runtime_settings(FileProcessingSettings, {}, env=env)
    assert settings.listen_visibility_timeout.total_seconds() == 0
