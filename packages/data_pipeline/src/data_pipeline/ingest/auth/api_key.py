"""``type = "api_key"``: a key sent as a header or a query parameter (never recorded)."""

from __future__ import annotations

import httpx

from data_pipeline.ingest.auth.base import Authenticator
from etl_core.contracts import Auth

__all__ = ["ApiKeyAuth"]


class ApiKeyAuth(Authenticator):
    """``key = "env:NAME"`` in header ``name`` (default ``X-API-Key``) or query ``name``
    (default ``api_key``; removed from every recorded URL)."""

    def __init__(self, source: str, config: Auth, *, timeout: float) -> None:
        super().__init__(source, config, timeout=timeout)
        if config.location == "query":
            self.hidden_params = (config.key_name,)

    def apply(self, request: httpx.Request) -> None:
        """Set the header, or the query parameter, to the key."""
        assert self.config.key is not None  # the source's validation requires it
        value = self.config.key.reveal()
        if self.config.location == "query":
            request.url = request.url.copy_set_param(self.config.key_name, value)
        else:
            request.headers[self.config.key_name] = value
