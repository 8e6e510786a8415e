"""``type = "basic"``: HTTP basic authentication, the password from a secret reference."""

from __future__ import annotations

import base64

import httpx

from data_pipeline.ingest.auth.base import Authenticator

__all__ = ["BasicAuth"]


class BasicAuth(Authenticator):
    """``username`` and ``password = "env:NAME"`` as ``Authorization: Basic …``."""

    def apply(self, request: httpx.Request) -> None:
        """Set the ``Authorization`` header."""
        assert self.config.username is not None  # the source's validation requires both
        assert self.config.password is not None
        pair = f"{self.config.username}:{self.config.password.reveal()}".encode()
        request.headers["Authorization"] = f"Basic {base64.b64encode(pair).decode('ascii')}"
