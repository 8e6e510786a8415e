"""Objects under keys the platform's own API refuses, put there as a vendor's tool could.

Landing zones receive whatever an SFTP bridge or an S3 client writes: ``a//b``,
``x/../y``, control characters, a trailing ``/`` on an object with content. Tests
of the lanes' handling of such keys plant them with :func:`plant_object`, which
goes around :class:`~etl_core.storage.ObjectStore`'s key validation on purpose.
"""

from __future__ import annotations

from etl_core.storage import LocalObjectStore, ObjectStore, S3ObjectStore

__all__ = ["local_store_can_hold", "plant_object"]


def local_store_can_hold(key: str) -> bool:
    """Whether a file system can hold ``key`` at all (no empty, ``.`` or ``..`` segment, NUL)."""
    return "\x00" not in key and all(s not in {"", ".", ".."} for s in key.split("/"))


def plant_object(store: ObjectStore, key: str, data: bytes) -> None:
    """Write ``data`` under ``key`` exactly as given, bypassing key validation.

    Raises:
        ValueError: a local store cannot hold ``key`` (see :func:`local_store_can_hold`).
        TypeError: ``store`` is neither a local nor an S3 store.
    """
    if isinstance(store, LocalObjectStore):
        if not local_store_can_hold(key):
            raise ValueError(f"a local store cannot hold the key {key!r}")
        path = store.root.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    if isinstance(store, S3ObjectStore):
        bucket, _, base = store.url.removeprefix("s3://").partition("/")
        full = f"{base.rstrip('/')}/{key}" if base else key
        store.client.put_object(Bucket=bucket, Key=full, Body=data)
        return
    raise TypeError(f"cannot plant an object in a {type(store).__name__}")
