"""The pipeline's settings: leases, attempts and engine limits no run can keep are refused
at start-up, naming the setting, instead of failing partition by partition later."""

from __future__ import annotations

import re

import pytest

from data_pipeline.settings import PipelineSettings
from etl_core.errors import ConfigError
from etl_core.runtime import load_runtime_settings


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"ETL_LEASE_SECONDS": "0"}, "lease_seconds: must be at least 1, got 0"),
        ({"ETL_LEASE_SECONDS": "-5"}, "lease_seconds: must be at least 1, got -5"),
        ({"ETL_LEASE_WAIT_SECONDS": "-1"}, "lease_wait_seconds: must be 0 or more, got -1"),
        ({"ETL_LEASE_HEARTBEAT_SECONDS": "-1"}, "lease_heartbeat_seconds: must be from 0"),
        ({"ETL_LEASE_HEARTBEAT_SECONDS": "3600"}, "below lease_seconds (3600), got 3600"),
        ({"ETL_MAX_ATTEMPTS": "0"}, "max_attempts: must be at least 1, got 0"),
        ({"ETL_DUCKDB_THREADS": "-2"}, "duckdb_threads: must be 0 (a share of the cores) or more"),
        ({"ETL_DUCKDB_MEMORY_LIMIT": "lots"}, "duckdb_memory_limit: must be a size such as"),
        ({"ETL_DUCKDB_MEMORY_LIMIT": "800"}, "got '800'"),
    ],
)
def test_a_setting_no_run_can_keep_is_refused_naming_it(env: dict[str, str], said: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_runtime_settings(PipelineSettings, {}, env=env)


@pytest.mark.parametrize("limit", ["800MB", "1.5GB", "2GiB", "500 MB", "80%", "1T"])
def test_the_memory_limits_duckdb_reads_are_accepted(limit: str) -> None:
    env = {"ETL_DUCKDB_MEMORY_LIMIT": limit}
    settings, _ = load_runtime_settings(PipelineSettings, {}, env=env)
    assert settings.duckdb_memory_limit == limit


def test_a_refused_lease_is_not_said_again_through_the_heartbeat_measured_against_it() -> None:
    with pytest.raises(ConfigError) as refused:
        load_runtime_settings(PipelineSettings, {}, env={"ETL_LEASE_SECONDS": "0"})

    assert refused.value.fields == ("lease_seconds",)


def test_a_negative_heartbeat_is_refused_beside_a_refused_lease() -> None:
    env = {"ETL_LEASE_SECONDS": "0", "ETL_LEASE_HEARTBEAT_SECONDS": "-1"}
    with pytest.raises(ConfigError) as refused:
        load_runtime_settings(PipelineSettings, {}, env=env)

    assert set(refused.value.fields) == {"lease_seconds", "lease_heartbeat_seconds"}
    said = "lease_heartbeat_seconds: must be 0 (a third of the lease) or more, got -1"
    assert said in str(refused.value)
