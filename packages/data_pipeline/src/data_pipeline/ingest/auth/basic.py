"""``type = "basic"``: HTTP basic authentication, the password from a secret reference."""

from __future__ import annotations

import base64

import httpx

from data_pipeline.ingest.auth.base import Authenticator
from etl_core.redaction import remember_secret

__all__ = ["BasicAuth"]


class BasicAuth(Authenticator):
    """``username`` and ``password = "env:NAME"`` as ``Authorization: Basic …``."""

    def apply(self, request: httpx.Request) -> None:
        """Set the ``Authorization`` header."""
        encoded = self._encoded()
        remember_secret(encoded)  # the pair is as secret as the password: masked in logs
        request.headers["Authorization"] = f"Basic {encoded}"

    def sent_secrets(self) -> list[str]:
        """The password, and the header's base64 of user and password (an echo of it)."""
        values = super().sent_secrets()
        return [*values, self._encoded()] if values else values

    def _encoded(self) -> str:
        """``user:password`` in base64, as the header carries it."""
        assert self.config.username is not None  # the source's validation requires both
        assert self.config.password is not None
        pair = f"{self.config.username}:{self.config.password.reveal()}".encode()
        return base64.b64encode(pair).decode("ascii")
