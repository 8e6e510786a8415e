"""Object storage: one interface over S3 (``s3://bucket/prefix``) and a local directory.

Open a store with :func:`open_store`; both backends share the semantics of
:class:`ObjectStore` (sorted lazy listings, byte ranges, writes visible only
when complete, idempotent deletes, versioned reads and compare-and-put) and
validate keys the same way. On top of compare-and-put: :class:`Records`, small
documents changed by a bounded read-change-put loop (:mod:`.records`), and
leases with a heartbeat and fencing tokens (:func:`acquire_lease`, :mod:`.leases`).
"""

import importlib
from typing import TYPE_CHECKING, Any

from .base import (
    DEFAULT_PART_SIZE,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    ObjectInfo,
    ObjectStore,
    ObjectWriter,
    TransientStorageError,
    VersionedObject,
)
from .etags import StagedFile
from .keys import join_key, validate_key, validate_prefix
from .leases import Holder, Lease, LeaseState, acquire_lease, read_lease, this_holder
from .local import LocalObjectStore
from .opener import open_store
from .records import NO_CHANGE, UPDATE_RETRY, Change, NoChange, Records, Update, Versioned
from .url import (
    InvalidStoreURLError,
    StoreLocation,
    parse_store_url,
    shown_location,
    store_identity,
)

if TYPE_CHECKING:
    from .s3 import DEFAULT_S3_RETRY, S3ObjectStore


def __getattr__(name: str) -> Any:
    # The S3 backend (with its retry machinery) is imported on first use: most
    # commands against a local store never need it.
    if name in {"DEFAULT_S3_RETRY", "S3ObjectStore", "s3"}:
        s3 = importlib.import_module(f"{__name__}.s3")
        return s3 if name == "s3" else getattr(s3, name)
    raise AttributeError(f"module 'etl_core.storage' has no attribute {name!r}")


__all__ = [
    "DEFAULT_PART_SIZE",
    "DEFAULT_S3_RETRY",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "NO_CHANGE",
    "UPDATE_RETRY",
    "Change",
    "Holder",
    "InvalidStoreURLError",
    "Lease",
    "LeaseState",
    "LocalObjectStore",
    "NoChange",
    "ObjectInfo",
    "ObjectStore",
    "ObjectWriter",
    "Records",
    "S3ObjectStore",
    "StagedFile",
    "StoreLocation",
    "TransientStorageError",
    "Update",
    "Versioned",
    "VersionedObject",
    "acquire_lease",
    "join_key",
    "open_store",
    "parse_store_url",
    "read_lease",
    "shown_location",
    "store_identity",
    "this_holder",
    "validate_key",
    "validate_prefix",
]
