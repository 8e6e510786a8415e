"""The whole-request deadline rests on httpx and httpcore internals (their pool's network
backend, the client's proxy transports): an httpx or httpcore release without them makes a
client refuse to start, naming what is gone, rather than run without the deadline."""

from __future__ import annotations

import pickle

import httpcore
import httpx
import pytest

from data_pipeline.errors import HttpDeadlineUnsupportedError, ProxySettingError
from data_pipeline.ingest import deadline
from data_pipeline.ingest.client import ApiClient
from etl_core.contracts import Endpoint, Source
from etl_core.errors import ConfigError

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


def _renamed_once_built(
    monkeypatch: pytest.MonkeyPatch, cls: type, field: str, renamed_to: str
) -> None:
    """Make every ``cls`` built from now on keep its ``field`` as ``renamed_to``: what a
    release of httpx or httpcore renaming that internal field looks like."""
    original = cls.__init__  # type: ignore[misc]

    def renamed(self: object, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        setattr(self, renamed_to, getattr(self, field))
        delattr(self, field)

    monkeypatch.setattr(cls, "__init__", renamed)


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
    _renamed_once_built(monkeypatch, httpcore.ConnectionPool, "_network_backend", "_backend")

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


def _only_proxy(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    for other in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(other, raising=False)
        monkeypatch.delenv(other.lower(), raising=False)
    monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("ALL_PROXY", "socks5://ops:hunter2@127.0.0.1:1080", "socksio"),
        ("HTTPS_PROXY", "ftp://ops:hunter2@127.0.0.1:21", "no transport for such a proxy"),
    ],
    ids=["socks_without_socksio", "unknown_scheme"],
)
def test_a_proxy_variable_httpx_cannot_use_is_a_setting_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    """Honouring the environment's proxies, a client used to fail with httpx's own
    ImportError or ValueError, in no error of the package (exit 1, not 2)."""
    if problem == "socksio":
        try:
            import socksio  # noqa: F401
        except ImportError:
            pass
        else:
            pytest.skip("socksio is installed: httpx can use a socks5:// proxy")
    _only_proxy(monkeypatch, name, value)

    with pytest.raises(ProxySettingError) as raised:
        ApiClient(SOURCE)

    error = raised.value
    scheme = value.split("://")[0]
    assert error.variables == (f"{name}={scheme}://…",)
    assert problem in str(error)
    assert "hunter2" not in str(error)
    assert error.__cause__ is None
    assert isinstance(error, ConfigError)  # exit 2: a setting to fix
    assert pickle.loads(pickle.dumps(error)).variables == error.variables


def test_a_usable_proxy_variable_still_starts_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    _only_proxy(monkeypatch, "https_proxy", "http://ops:hunter2@127.0.0.1:3128")

    client = ApiClient(SOURCE)._http

    assert len(client._mounts) == 1


def test_a_client_without_its_default_transport_field_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No transport given and no ``_transport`` found read as "the transport given" (both
    ``None``): the client started without the deadline instead of refusing."""
    _renamed_once_built(monkeypatch, httpx.Client, "_transport", "_default")

    with pytest.raises(HttpDeadlineUnsupportedError, match=r"httpx\.Client\._transport"):
        ApiClient(SOURCE)


def test_a_proxy_transport_of_another_kind_refuses_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One it cannot reach into was skipped: requests through that proxy went without the
    deadline."""
    _only_proxy(monkeypatch, "HTTPS_PROXY", "http://127.0.0.1:3128")
    other = httpx.MockTransport(lambda request: httpx.Response(200))
    monkeypatch.setattr(httpx.Client, "_init_proxy_transport", lambda *a, **k: other)

    with pytest.raises(HttpDeadlineUnsupportedError, match="transport of a proxy"):
        ApiClient(SOURCE)
