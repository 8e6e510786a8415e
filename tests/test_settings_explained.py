"""`config show` explains every setting of every lane: each field has a meaning."""

from __future__ import annotations

import dataclasses

import pytest

from data_pipeline.settings import PipelineSettings
from etl_core.runtime import RuntimeSettings
from etl_core.settings_help import field_docs
from file_processing.settings import FileProcessingSettings
from observability.settings import ObservabilitySettings

LANE_SETTINGS = [RuntimeSettings, FileProcessingSettings, PipelineSettings, ObservabilitySettings]


@pytest.mark.parametrize("settings", LANE_SETTINGS, ids=lambda c: c.__name__)
def test_every_setting_has_a_meaning(settings: type[RuntimeSettings]) -> None:
    docs = field_docs(settings)
    unexplained = [f.name for f in dataclasses.fields(settings) if not docs.get(f.name)]
    assert unexplained == []
