"""``type = "none"``: the endpoint answers in one page."""

from __future__ import annotations

from data_pipeline.ingest.pagination.base import Page, PageRequest, Paginator

__all__ = ["SinglePage"]


class SinglePage(Paginator):
    """One request, no next page."""

    def first(self) -> PageRequest:
        """The request as configured."""
        return PageRequest(params=self.size_params())

    def last_without_body(self, current: PageRequest, page: Page) -> bool:
        """The one page is the last, read or not."""
        return True

    def advance(self, current: PageRequest, page: Page) -> PageRequest | None:
        """There is no next page."""
        return None
