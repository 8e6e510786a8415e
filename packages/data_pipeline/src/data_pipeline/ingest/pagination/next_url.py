"""``type = "next_url"``: the body's ``next_url_path`` holds the URL of the next page."""

from __future__ import annotations

from data_pipeline.ingest.pagination.base import Page, PageRequest, Paginator

__all__ = ["NextUrl"]


class NextUrl(Paginator):
    """Follows the link (relative links are resolved) until it is absent, ``null``, empty or
    ``false``."""

    def first(self) -> PageRequest:
        """The endpoint itself."""
        return PageRequest(params=self.size_params())

    def advance(self, current: PageRequest, page: Page) -> PageRequest | None:
        """The page's next link."""
        assert self.config.next_url_path is not None  # the source's validation requires it
        link = self.pointer(page, "next_url_path", numbers=False)
        if link is None:
            return None
        return self.follow(link, page)
