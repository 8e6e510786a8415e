"""``type = "page_number"``: ``?page=1``, ``?page=2``, … until an empty page, total or has-more."""

from __future__ import annotations

from data_pipeline.ingest.pagination.base import Page, PageRequest, Paginator

__all__ = ["PageNumber"]


class PageNumber(Paginator):
    """``page_param`` counts up from ``start_page``; ``size_param = page_size`` when set."""

    parallel = True

    def first(self) -> PageRequest:
        """Page ``start_page``."""
        return self._page(self.config.start_page)

    def advance(self, current: PageRequest, page: Page) -> PageRequest | None:
        """The next page number."""
        return self._page(int(current.params[self.config.page_param]) + 1)

    def predict(self, current: PageRequest, depth: int) -> list[PageRequest]:
        """The next page numbers."""
        number = int(current.params[self.config.page_param])
        return [self._page(number + step) for step in range(1, depth)]

    def _page(self, number: int) -> PageRequest:
        return PageRequest(params={self.config.page_param: str(number), **self.size_params()})
