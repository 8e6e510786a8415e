"""Store URL parsing and opening: s3://, file:// and plain paths; everything else refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from etl_core.storage import (
    InvalidStoreURLError,
    LocalObjectStore,
    StoreLocation,
    open_store,
    parse_store_url,
    shown_location,
)


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://my-bucket", "my-bucket", ""),
        ("s3://my-bucket/", "my-bucket", ""),
        ("s3://my-bucket/env/prod", "my-bucket", "env/prod"),
        ("s3://my-bucket/env/prod/", "my-bucket", "env/prod"),
        ("S3://data.lake-01/x", "data.lake-01", "x"),
    ],
)
def test_s3_urls_give_bucket_and_prefix(url: str, bucket: str, prefix: str) -> None:
    location = parse_store_url(url)

    assert location == StoreLocation(scheme="s3", bucket=bucket, prefix=prefix)
    assert location.url == f"s3://{bucket}" + (f"/{prefix}" if prefix else "")


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("file:///srv/lake", "/srv/lake"),
        ("file:///srv/lake/", "/srv/lake"),
        ("file://localhost/srv/lake", "/srv/lake"),
        ("file:///srv/my%20lake", "/srv/my lake"),
        ("file:///srv/a/../lake", "/srv/lake"),
    ],
)
def test_file_urls_give_an_absolute_directory(url: str, path: str) -> None:
    location = parse_store_url(url)

    assert location.scheme == "file"
    assert location.path == Path(path)
    assert parse_store_url(location.url) == location


def test_plain_relative_path_becomes_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")

    assert parse_store_url("srv/lake").path == Path("/srv/lake")
    assert parse_store_url(Path("srv/lake")).path == Path("/srv/lake")


def test_plain_path_expands_the_home_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/etl")

    assert parse_store_url("~/lake").path == Path("/home/etl/lake")


@pytest.mark.parametrize("url", ["gs://bucket/x", "http://example.invalid/x", "ftp://h/x"])
def test_unknown_scheme_is_refused_naming_url_and_supported_schemes(url: str) -> None:
    with pytest.raises(InvalidStoreURLError) as caught:
        parse_store_url(url)

    message = str(caught.value)
    assert repr(url) in message
    assert "s3" in message
    assert "file" in message
    assert caught.value.url == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("s3://", "bucket"),
        ("s3://ab/x", "bucket"),
        ("s3://Upper_Case/x", "bucket"),
        ("s3://bucket/a/../../b", "prefix"),
        ("s3://bucket/a//b", "prefix"),
        ("s3://bucket/x?versionId=1", "query"),
        ("file://server/share", "must be local"),
        ("file:relative/dir", "file URL"),
        ("file:///srv/a%00b", "NUL"),
        ("s3:/bucket/x", "not a valid URL"),
        ("S3:bucket", "not a valid URL"),
        ("s3//bucket/x", "not a valid URL"),
        ("https:/example.com/x", "not a valid URL"),
    ],
)
def test_malformed_store_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(InvalidStoreURLError, match=reason):
        parse_store_url(url)


@pytest.mark.parametrize(
    "url",
    ["s3://lake/prod ", " s3://lake/prod", "s3://lake/prod\n", "s3://lake/prod/\t", "/srv/lake "],
)
def test_store_url_with_whitespace_at_either_end_is_refused_naming_it(url: str) -> None:
    # "s3://lake/prod " would else be the prefix "prod ": an empty store, without an error.
    with pytest.raises(InvalidStoreURLError, match="whitespace") as caught:
        parse_store_url(url)

    assert repr(url) in str(caught.value)
    assert caught.value.url == url


def test_invalid_store_url_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unsupported scheme"):
        parse_store_url("gs://bucket")


def test_open_store_on_a_path_gives_a_local_store_without_touching_disk(tmp_path: Path) -> None:
    target = tmp_path / "not-created"

    store = open_store(os.fspath(target), fsync=False)

    assert isinstance(store, LocalObjectStore)
    assert store.root == target
    assert store.url == target.as_uri()
    assert not target.exists()


def test_open_store_refuses_options_the_backend_does_not_take(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"endpoint_url .*LocalObjectStore.*accepted: fsync"):
        open_store(tmp_path, endpoint_url="http://127.0.0.1:9000")


def test_open_store_refuses_unknown_schemes() -> None:
    with pytest.raises(InvalidStoreURLError, match="'azure://container/x'"):
        open_store("azure://container/x")


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("s3://AKIAEXAMPLE:hunter2secret@bucket/landing", "s3://AKIAEXAMPLE:***@bucket"),
        ("file://etl:hunter2secret@localhost/srv/lake", "file://etl:***@localhost"),
        ("s3://AKIAEXAMPLE:hunter2secret@bucket/landing?x=1", "s3://AKIAEXAMPLE:***@bucket"),
        ("s3://AKIAEXAMPLE:hunter2secret@bucket/landing ", "s3://AKIAEXAMPLE:***@bucket"),
        ("gs://AKIAEXAMPLE:hunter2secret@bucket/landing", "gs://AKIAEXAMPLE:***@bucket"),
    ],
)
def test_a_store_url_with_a_password_is_refused_without_showing_the_password(
    url: str, masked: str
) -> None:
    with pytest.raises(InvalidStoreURLError) as caught:
        parse_store_url(url)

    assert "hunter2secret" not in str(caught.value)
    assert "hunter2secret" not in (caught.value.url or "")
    assert masked in str(caught.value)


@pytest.mark.parametrize("url", ["s3://AKIAEXAMPLE@bucket/landing", "file://etl@localhost/srv"])
def test_a_store_url_naming_a_user_is_refused_saying_credentials_never_go_in_it(
    url: str,
) -> None:
    with pytest.raises(InvalidStoreURLError, match="carries no credentials") as caught:
        parse_store_url(url)

    assert caught.value.url == url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "file:///data/lake/curated/pos/dt%3D2026-01-01/_manifest.json",
            "/data/lake/curated/pos/dt=2026-01-01/_manifest.json",
        ),
        ("file:///data/my%20lake/a%20b.csv", "'/data/my lake/a b.csv'"),
        ("file:///data/it%27s/k", "'/data/it'\"'\"'s/k'"),
        (
            "s3://bucket/env/curated/pos/dt=2026-01-01/_manifest.json",
            "s3://bucket/env/curated/pos/dt=2026-01-01/_manifest.json",
        ),
    ],
)
def test_a_location_is_shown_as_an_operator_pastes_it(url: str, shown: str) -> None:
    """A local object's file URL percent-encodes ``=`` and spaces (``dt%3D2026-01-01``),
    which neither a shell nor the CLI takes as that path: shown as the plain path, quoted
    for a shell only when it needs it; an S3 URL as it is."""
    assert shown_location(url) == shown


def test_a_local_objects_location_is_its_path_as_a_shell_reads_it(tmp_path: Path) -> None:
    import shlex

    lake = open_store(tmp_path / "my lake")
    lake.write_bytes("curated/pos/dt=2026-01-01/_manifest.json", b"{}")

    shown = lake.location_for("curated/pos/dt=2026-01-01/_manifest.json")

    assert "%" not in shown
    (pasted,) = shlex.split(shown)
    assert Path(pasted).read_bytes() == b"{}"
    assert open_store(pasted).url == Path(pasted).as_uri()  # the CLI takes it as well
