"""``type = "cursor"``: the body's ``cursor_path`` is sent back as ``cursor_param``."""

from __future__ import annotations

from data_pipeline.ingest.pagination.base import Page, PageRequest, Paginator

__all__ = ["BodyCursor"]


class BodyCursor(Paginator):
    """The walk ends when the body has no cursor (absent, ``null``, empty or ``false``)."""

    def first(self) -> PageRequest:
        """No cursor: the first page."""
        return PageRequest(params=self.size_params())

    def advance(self, current: PageRequest, page: Page) -> PageRequest | None:
        """The request carrying the page's cursor."""
        assert self.config.cursor_path is not None  # the source's validation requires it
        cursor = self.pointer(page, "cursor_path", numbers=True)
        if cursor is None:
            return None
        return PageRequest(params={**self.size_params(), self.config.cursor_param: cursor})
