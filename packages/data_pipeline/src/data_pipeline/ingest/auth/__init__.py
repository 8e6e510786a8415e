"""Authenticators of API sources: one module per ``[auth] type``, see :func:`authenticator_for`.

``none``, ``bearer``, ``api_key`` (header or query), ``basic`` and ``oauth2``
(client credentials, refreshed before expiry). Every one is an ``httpx.Auth``
(:class:`Authenticator`) and passes the same contract tests.
"""

from __future__ import annotations

from data_pipeline.ingest.auth.api_key import ApiKeyAuth
from data_pipeline.ingest.auth.base import Authenticator
from data_pipeline.ingest.auth.basic import BasicAuth
from data_pipeline.ingest.auth.bearer import BearerAuth
from data_pipeline.ingest.auth.none import NoAuth
from data_pipeline.ingest.auth.oauth2 import OAuth2ClientCredentials
from etl_core.contracts import Source
from etl_core.errors import UnknownKindError

__all__ = [
    "AUTHENTICATORS",
    "ApiKeyAuth",
    "Authenticator",
    "BasicAuth",
    "BearerAuth",
    "NoAuth",
    "OAuth2ClientCredentials",
    "authenticator_for",
]

AUTHENTICATORS: dict[str, type[Authenticator]] = {
    "none": NoAuth,
    "bearer": BearerAuth,
    "api_key": ApiKeyAuth,
    "basic": BasicAuth,
    "oauth2": OAuth2ClientCredentials,
}
"""The authenticator class of each ``[auth] type``."""


def authenticator_for(source: Source) -> Authenticator:
    """The authenticator of ``source``'s ``[auth]`` section.

    Raises:
        UnknownKindError: its ``type`` has no class in :data:`AUTHENTICATORS` (the contract
            model, ``etl_core.contracts.AUTH_TYPES``, names a kind this package does not
            implement).
    """
    try:
        cls = AUTHENTICATORS[source.auth.type]
    except KeyError:
        raise UnknownKindError(
            "auth.type", source.auth.type, sorted(AUTHENTICATORS), where=f"source {source.source!r}"
        ) from None
    return cls(source.source, source.auth, timeout=source.timeout.total_seconds())
