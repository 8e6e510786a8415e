"""Argument limits shared by both backends: byte ranges, part sizes, URL lifetimes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from etl_core.errors import RetryableError, StorageError
from etl_core.retry import RetryPolicy
from etl_core.storage import MAX_PART_SIZE, MIN_PART_SIZE, TransientStorageError
from etl_core.storage.base import check_expires, check_part_size, check_range


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(None, None, (0, None)), (5, None, (5, None)), (None, 9, (0, 9)), (3, 3, (3, 3))],
)
def test_ranges_default_to_the_whole_object(
    start: int | None, end: int | None, expected: tuple[int, int | None]
) -> None:
    assert check_range(start, end) == expected


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (-1, None, "start must be >= 0"),
        (None, -1, "end must be >= 0"),
        (9, 3, r"end \(3\) is before start \(9\)"),
        (True, None, "start must be an integer"),
        (None, 2.0, "end must be an integer"),
    ],
)
def test_bad_ranges_are_refused(start: object, end: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_range(start, end)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [MIN_PART_SIZE, 64 * 1024 * 1024, MAX_PART_SIZE])
def test_part_sizes_within_s3_limits_are_accepted(size: int) -> None:
    assert check_part_size(size) == size


@pytest.mark.parametrize("size", [0, MIN_PART_SIZE - 1, MAX_PART_SIZE + 1, 5.5 * 1024 * 1024])
def test_part_sizes_outside_s3_limits_are_refused(size: int) -> None:
    with pytest.raises(ValueError, match="part_size"):
        check_part_size(size)


@pytest.mark.parametrize(
    ("expires", "seconds"),
    [(1, 1), (3600, 3600), (90.7, 90), (timedelta(days=7), 604_800)],
)
def test_presign_lifetimes_convert_to_seconds(expires: float | timedelta, seconds: int) -> None:
    assert check_expires(expires) == seconds


@pytest.mark.parametrize("expires", [0, 0.5, -1, 604_801, timedelta(days=8), "3600", True])
def test_presign_lifetimes_outside_limits_are_refused(expires: object) -> None:
    with pytest.raises(ValueError, match="expires"):
        check_expires(expires)  # type: ignore[arg-type]


def test_transient_storage_error_is_caught_as_storage_and_retried_as_retryable() -> None:
    error = TransientStorageError("slow down", key="k", url="s3://b/k", retry_after=1.5)

    assert isinstance(error, StorageError)
    assert isinstance(error, RetryableError)
    assert (error.key, error.url, error.retry_after) == ("k", "s3://b/k", 1.5)


def test_retry_policy_retries_transient_storage_errors_with_their_hint() -> None:
    sleeps: list[float] = []
    outcomes: list[BaseException | str] = [TransientStorageError("x", retry_after=0.25), "ok"]

    def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    policy = RetryPolicy(attempts=2, sleep=sleeps.append)

    assert policy.call(flaky) == "ok"
    assert sleeps == [0.25]
