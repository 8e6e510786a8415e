"""The executor names: the ``executor`` setting accepts exactly the names
``unit_executor`` builds, and refuses another naming the setting, the value and the names."""

from __future__ import annotations

from typing import get_args, get_type_hints

import pytest

from etl_core.errors import ConfigError
from etl_core.runtime import RuntimeSettings, load_runtime_settings
from etl_core.work.choice import EXECUTORS


def test_the_setting_accepts_exactly_the_executors_unit_executor_builds() -> None:
    assert set(get_args(get_type_hints(RuntimeSettings)["executor"])) == set(EXECUTORS)


def test_an_unknown_executor_names_the_setting_the_value_and_the_executors() -> None:
    with pytest.raises(ConfigError) as caught:
        load_runtime_settings(RuntimeSettings, env={"ETL_EXECUTOR": "dask"})

    text = str(caught.value)
    assert "executor" in caught.value.fields
    assert "dask" in text
    assert all(name in text for name in EXECUTORS)
