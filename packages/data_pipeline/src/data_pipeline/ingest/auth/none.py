"""``type = "none"``: requests go out unsigned."""

from __future__ import annotations

import httpx

from data_pipeline.ingest.auth.base import Authenticator

__all__ = ["NoAuth"]


class NoAuth(Authenticator):
    """Public APIs: nothing to add."""

    def apply(self, request: httpx.Request) -> None:
        """Leave ``request`` as it is."""
