"""Paginators of API endpoints, one module per ``[pagination] type``, chosen by
:func:`paginator_for`: ``none``, ``page_number``, ``offset``, ``cursor``, ``next_url``,
``link_header``. Every one passes the same contract tests."""

from __future__ import annotations

from data_pipeline.ingest.pagination.base import Page, PageRequest, Paginator, records_digest
from data_pipeline.ingest.pagination.cursor import BodyCursor
from data_pipeline.ingest.pagination.link_header import LinkHeader, next_link
from data_pipeline.ingest.pagination.next_url import NextUrl
from data_pipeline.ingest.pagination.offset import OffsetLimit
from data_pipeline.ingest.pagination.page_number import PageNumber
from data_pipeline.ingest.pagination.single import SinglePage
from etl_core.contracts import Endpoint, Source
from etl_core.errors import UnknownKindError

__all__ = [
    "PAGINATORS",
    "BodyCursor",
    "LinkHeader",
    "NextUrl",
    "OffsetLimit",
    "Page",
    "PageNumber",
    "PageRequest",
    "Paginator",
    "SinglePage",
    "next_link",
    "paginator_for",
    "records_digest",
]

PAGINATORS: dict[str, type[Paginator]] = {
    "none": SinglePage,
    "page_number": PageNumber,
    "offset": OffsetLimit,
    "cursor": BodyCursor,
    "next_url": NextUrl,
    "link_header": LinkHeader,
}
"""The paginator class of each ``[pagination] type``."""


def paginator_for(source: Source, endpoint: Endpoint) -> Paginator:
    """The paginator of ``endpoint``.

    Raises:
        UnknownKindError: its ``[pagination] type`` has no class in :data:`PAGINATORS`
            (the contract model, ``etl_core.contracts.PAGINATION_TYPES``, names a style
            this package does not implement).
    """
    config = endpoint.pagination
    try:
        cls = PAGINATORS[config.type]
    except KeyError:
        index = next((i for i, e in enumerate(source.endpoints) if e.name == endpoint.name), 0)
        raise UnknownKindError(
            f"endpoints[{index}].pagination.type",
            config.type,
            sorted(PAGINATORS),
            where=f"source {source.source!r}",
        ) from None
    return cls(config, source=source.source, endpoint=endpoint.name, base_url=source.base_url)
