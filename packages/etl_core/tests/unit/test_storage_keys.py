"""Key validation and joining: keys are relative and can never escape their prefix."""

from __future__ import annotations

import pytest

from etl_core.errors import InvalidKeyError
from etl_core.storage import join_key, validate_key, validate_prefix
from etl_core.storage.keys import MAX_KEY_BYTES


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "landing/acme/orders 2024-05-01.csv",
        "curated/ds/dt=2024-05-01/part-0.parquet",
        "_state/lane/ledger.json",
        ".hidden",
        "a/..b/c..",
        "ünïcödé/ключ",
    ],
)
def test_relative_keys_are_accepted_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("/abs/key", "starts with '/'"),
        ("..", "escape"),
        ("../x", "escape"),
        ("a/../../x", "escape"),
        ("a/..", "escape"),
        ("a/./b", "escape"),
        ("a\\..\\b", "backslash"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("a//b", "empty segment"),
        ("a/", "ends with '/'"),
        ("\ud800", "UTF-8"),
    ],
)
def test_key_that_could_escape_or_is_malformed_is_refused_with_the_key_named(
    key: str, reason: str
) -> None:
    with pytest.raises(InvalidKeyError, match=reason) as caught:
        validate_key(key)

    assert repr(key) in str(caught.value)
    assert caught.value.key == key


def test_key_longer_than_s3_allows_is_refused() -> None:
    with pytest.raises(InvalidKeyError, match=f"longer than {MAX_KEY_BYTES} bytes"):
        validate_key("é" * 513)  # 1026 bytes of UTF-8


def test_non_string_key_is_refused() -> None:
    with pytest.raises(InvalidKeyError, match="expected a string, got int"):
        validate_key(42)  # type: ignore[arg-type]


def test_invalid_key_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="escape"):
        validate_key("../x")


@pytest.mark.parametrize("prefix", ["", "landing/", "landing/acme", "dt=2024-05", "a/b/"])
def test_listing_prefixes_may_be_empty_or_end_with_a_slash(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "/landing", "../", "a/../b/", "a//", "a\\", "a\x00"])
def test_escaping_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(InvalidKeyError, match="invalid prefix"):
        validate_prefix(prefix)


def test_join_key_builds_layout_keys() -> None:
    key = join_key("validated/", "orders", "dt=2024-05-01", "orders.csv")

    assert key == "validated/orders/dt=2024-05-01/orders.csv"


def test_join_key_skips_empty_parts_and_keeps_inner_slashes() -> None:
    assert join_key("", "raw/api", "", "src/page-1.jsonl.gz") == "raw/api/src/page-1.jsonl.gz"


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        (("landing", "/etc/passwd"), "starts with '/'"),
        (("landing", "..", "x"), "escape"),
        (("landing", "a//b"), "empty segment"),
        ((), "empty"),
        (("", ""), "empty"),
    ],
)
def test_join_key_refuses_parts_that_escape(parts: tuple[str, ...], reason: str) -> None:
    with pytest.raises(InvalidKeyError, match=reason):
        join_key(*parts)


def test_join_key_refuses_non_string_parts() -> None:
    with pytest.raises(InvalidKeyError, match="expected a string, got NoneType"):
        join_key("landing", None)  # type: ignore[arg-type]
