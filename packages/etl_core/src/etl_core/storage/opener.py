"""Open an object store from its URL: the one entry point runtimes use."""

from __future__ import annotations

import inspect
import os
from typing import Any

from .base import ObjectStore
from .local import LocalObjectStore
from .url import parse_store_url

__all__ = ["open_store"]


def open_store(url: str | os.PathLike[str], **options: Any) -> ObjectStore:
    """Open the store at ``url``: ``s3://bucket/prefix``, ``file:///abs/dir`` or a directory path.

    ``options`` go to the backend: :class:`~etl_core.storage.s3.S3ObjectStore`
    (``endpoint_url``, ``region``, ``retry``...) or
    :class:`~etl_core.storage.local.LocalObjectStore` (``fsync``).

    Raises:
        InvalidStoreURLError: the URL is malformed or its scheme unsupported.
        TypeError: an option the backend does not accept.
        MissingDependencyError: an ``s3://`` URL without boto3 installed.
    """
    location = parse_store_url(url)
    if location.scheme == "s3":
        from .s3 import S3ObjectStore  # the S3 backend loads only for s3:// stores

        assert location.bucket is not None
        _check_options(S3ObjectStore, options, location.url)
        return S3ObjectStore(location.bucket, location.prefix, **options)
    assert location.path is not None
    _check_options(LocalObjectStore, options, location.url)
    return LocalObjectStore(location.path, **options)


def _check_options(backend: type[ObjectStore], options: dict[str, Any], url: str) -> None:
    parameters = inspect.signature(backend).parameters
    accepted = sorted(n for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(unknown)} for store {url} ({backend.__name__}); "
            f"accepted: {', '.join(accepted)}"
        )
