"""``type = "offset"``: ``?offset=0&limit=100``, ``?offset=100&limit=100``, …"""

from __future__ import annotations

from data_pipeline.ingest.pagination.base import Page, PageRequest, Paginator

__all__ = ["OffsetLimit"]


class OffsetLimit(Paginator):
    """``offset_param`` grows by the records received; ``limit_param = page_size``."""

    parallel = True

    def first(self) -> PageRequest:
        """Offset 0."""
        return self._at(0)

    def advance(self, current: PageRequest, page: Page) -> PageRequest | None:
        """The offset after the records of ``page``."""
        return self._at(int(current.params[self.config.offset_param]) + len(page.records))

    def predict(self, current: PageRequest, depth: int) -> list[PageRequest]:
        """The next offsets, a full page apart."""
        assert self.config.page_size is not None  # the source's validation requires it
        offset = int(current.params[self.config.offset_param])
        return [self._at(offset + step * self.config.page_size) for step in range(1, depth)]

    def _at(self, offset: int) -> PageRequest:
        assert self.config.page_size is not None  # the source's validation requires it
        params = {
            self.config.offset_param: str(offset),
            self.config.limit_param: str(self.config.page_size),
        }
        return PageRequest(params=params)
