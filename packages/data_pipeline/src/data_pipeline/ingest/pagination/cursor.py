"""``type = "cursor"``: the body's ``cursor_path`` is sent back as ``cursor_param``."""

from __future__ import annotations

from data_pipeline.ingest.documents import lookup
from data_pipeline.ingest.pagination.base import Page, PageRequest, Paginator

__all__ = ["BodyCursor"]


class BodyCursor(Paginator):
    """The walk ends when the body has no cursor (absent, ``null`` or empty)."""

    def first(self) -> PageRequest:
        """No cursor: the first page."""
        return PageRequest(params=self.size_params())

    def advance(self, current: PageRequest, page: Page) -> PageRequest | None:
        """The request carrying the page's cursor."""
        assert self.config.cursor_path is not None  # the source's validation requires it
        cursor = lookup(page.document, self.config.cursor_path)
        if cursor is None or isinstance(cursor, bool) or not isinstance(cursor, str | int):
            return None
        if cursor == "":
            return None
        return PageRequest(params={**self.size_params(), self.config.cursor_param: str(cursor)})
