"""``type = "bearer"``: ``Authorization: Bearer <token>`` from a secret reference."""

from __future__ import annotations

import httpx

from data_pipeline.ingest.auth.base import Authenticator

__all__ = ["BearerAuth"]


class BearerAuth(Authenticator):
    """A static token (``token = "env:NAME"``), read again on each request."""

    def apply(self, request: httpx.Request) -> None:
        """Set the ``Authorization`` header."""
        assert self.config.token is not None  # the source's validation requires it
        request.headers["Authorization"] = f"Bearer {self.config.token.reveal()}"

    def refresh(self) -> bool:
        """A rotated secret may have replaced the token: read it again and retry once."""
        return True
