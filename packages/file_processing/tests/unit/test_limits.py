"""UnpackLimits: safe defaults, and a clear error naming each bad field."""

from __future__ import annotations

import dataclasses

import pytest

from etl_core.errors import ConfigError
from file_processing.limits import GIB, MIB, UnpackLimits


def test_defaults_are_the_documented_ones() -> None:
    limits = UnpackLimits()

    assert limits.max_total_bytes == 10 * GIB
    assert limits.max_member_bytes == 5 * GIB
    assert limits.max_ratio == 200
    assert limits.ratio_floor_bytes == MIB
    assert limits.max_entries == 10_000
    assert limits.max_depth == 3


def test_limits_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        UnpackLimits().max_depth = 9  # type: ignore[misc]


def test_every_non_positive_limit_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        UnpackLimits(max_ratio=0, max_entries=-1, max_depth=True)

    assert set(caught.value.fields) == {"max_ratio", "max_entries", "max_depth"}
