"""``type = "link_header"``: RFC 8288 ``Link: <https://…?page=2>; rel="next"``."""

from __future__ import annotations

import re

from data_pipeline.ingest.pagination.base import Page, PageRequest, Paginator

__all__ = ["LinkHeader", "next_link"]

_PARAM = re.compile(r""";\s*([^\s=;,]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,]*)""")


def next_link(header: str) -> str | None:
    """The target of the ``rel="next"`` link of a ``Link`` header value, if any.

    Relation types are a space-separated list (``rel="next last"``), compared
    case-insensitively; quoted parameter values may hold commas and semicolons.
    """
    for target, params in _links(header):
        relations = params.get("rel", "").lower().split()
        if "next" in relations:
            return target.strip()
    return None


def _links(header: str) -> list[tuple[str, dict[str, str]]]:
    """``(target, parameters)`` of each link-value, parameter names in lower case."""
    links = []
    position = 0
    while (start := header.find("<", position)) >= 0:
        end = header.find(">", start)
        if end < 0:
            break
        position, quoted = end + 1, False
        while position < len(header):  # the parameters run to the next comma outside quotes
            char = header[position]
            if char == '"':
                quoted = not quoted
            elif char == "," and not quoted:
                break
            position += 1
        params = {
            name.lower(): value.strip().strip('"')
            for name, value in _PARAM.findall(header[end + 1 : position])
        }
        links.append((header[start + 1 : end], params))
    return links


class LinkHeader(Paginator):
    """Follows ``rel="next"`` (relative links are resolved) until a response has none."""

    def first(self) -> PageRequest:
        """The endpoint itself."""
        return PageRequest(params=self.size_params())

    def past_unreadable(self, current: PageRequest, page: Page) -> PageRequest | None:
        """The next link is in the headers: the walk goes on past a body it cannot read."""
        following = self.advance(current, page)
        if following is None:
            return None
        return self.step(current, following, page, seen=current.seen, flagged=current.flagged)

    def last_without_body(self, current: PageRequest, page: Page) -> bool:
        """The API's own last page: its answer has a ``Link`` header (``rel="prev"``,
        ``"first"``...) without a next link. An answer with no ``Link`` at all (a proxy's
        HTML error page answered with 200, say) is not known to be the last."""
        link = page.headers.get("link") or ""
        return bool(_links(link)) and next_link(link) is None

    def advance(self, current: PageRequest, page: Page) -> PageRequest | None:
        """The response's next link."""
        link = next_link(page.headers.get("link", ""))
        return self.follow(link, page) if link else None
