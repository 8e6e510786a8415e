"""etl_core.resources.Closeable: a ``with`` block closes the object, however it ends."""

from __future__ import annotations

import pytest

from etl_core.resources import Closeable


class _Held(Closeable):
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_a_with_block_returns_the_object_and_closes_it_once() -> None:
    with _Held() as held:
        assert held.closed == 0
    assert held.closed == 1


def test_a_with_block_that_raises_closes_the_object_and_lets_the_error_through() -> None:
    held = _Held()
    with pytest.raises(ValueError, match="boom"), held:
        raise ValueError("boom")
    assert held.closed == 1


def test_a_closeable_without_close_cannot_be_made() -> None:
    class Incomplete(Closeable):
        pass

    with pytest.raises(TypeError, match="close"):
        Incomplete()  # type: ignore[abstract]
