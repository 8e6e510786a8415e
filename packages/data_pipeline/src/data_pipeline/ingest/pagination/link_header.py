"""``type = "link_header"``: RFC 8288 ``Link: <https://…?page=2>; rel="next"``."""

from __future__ import annotations

import re

from data_pipeline.ingest.pagination.base import Page, PageRequest, Paginator

__all__ = ["LinkHeader", "next_link"]

_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")
_REL = re.compile(r"""\brel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.IGNORECASE)


def next_link(header: str) -> str | None:
    """The target of the ``rel="next"`` link of a ``Link`` header value, if any.

    Relation types are a space-separated list (``rel="next last"``), compared
    case-insensitively.
    """
    for match in _LINK.finditer(header):
        rel = _REL.search(match.group(2) or "")
        if rel is None:
            continue
        relations = (rel.group(1) or rel.group(2) or "").lower().split()
        if "next" in relations:
            return match.group(1).strip()
    return None


class LinkHeader(Paginator):
    """Follows ``rel="next"`` (relative links are resolved) until a response has none."""

    def first(self) -> PageRequest:
        """The endpoint itself."""
        return PageRequest(params=self.size_params())

    def advance(self, current: PageRequest, page: Page) -> PageRequest | None:
        """The response's next link."""
        link = next_link(page.headers.get("link", ""))
        return self.follow(link, page) if link else None
