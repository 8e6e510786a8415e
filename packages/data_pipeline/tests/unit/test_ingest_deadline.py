"""The whole-request deadline rests on httpx and httpcore internals (their pool's network
backend, the client's proxy transports): an httpx or httpcore release without them makes a
client refuse to start, naming what is gone, rather than run without the deadline."""

from __future__ import annotations

import pickle

import httpcore
import httpx
import pytest

from data_pipeline.errors import HttpDeadlineUnsupportedError
from data_pipeline.ingest import deadline
from data_pipeline.ingest.client import ApiClient
from etl_core.contracts import Endpoint, Source

SOURCE = Source(
    source="shop",
    base_url="http://api.test",
    endpoints=(Endpoint(name="items", path="/items", dataset="shop_items"),),
)


class _TransportWithoutPool(httpx.HTTPTransport):
    """An httpx release whose transport keeps its pool elsewhere."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._connections = self._pool
        del self._pool


def test_a_transport_without_its_pool_refuses_the_client_naming_the_versions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(httpx._client, "HTTPTransport", _TransportWithoutPool)

    with pytest.raises(HttpDeadlineUnsupportedError) as raised:
        ApiClient(SOURCE)

    error = raised.value
    assert error.missing.startswith("httpx.HTTPTransport._pool")
    assert f"httpx {httpx.__version__} / httpcore {httpcore.__version__}" in str(error)
    assert pickle.loads(pickle.dumps(error)).httpx_version == httpx.__version__


def test_a_pool_without_its_network_backend_refuses_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = httpcore.ConnectionPool.__init__

    def renamed(pool: httpcore.ConnectionPool, *args: object, **kwargs: object) -> None:
        original(pool, *args, **kwargs)  # type: ignore[arg-type]
        pool._backend = pool._network_backend  # type: ignore[attr-defined]
        del pool._network_backend

    monkeypatch.setattr(httpcore.ConnectionPool, "__init__", renamed)

    with pytest.raises(HttpDeadlineUnsupportedError, match="_network_backend"):
        ApiClient(SOURCE)


def test_the_transports_of_the_environments_proxies_keep_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")

    client = ApiClient(SOURCE)._http

    transports = [client._transport, *client._mounts.values()]
    assert len(transports) == 3  # the default one, and one per proxy: kept by httpx
    pools = [t._pool for t in transports]  # type: ignore[union-attr]
    assert all(isinstance(p._network_backend, deadline._Backend) for p in pools)
