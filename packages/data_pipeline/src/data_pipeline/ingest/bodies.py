"""Reading a response body within a deadline and a size, for the API and its token endpoint.

httpx's timeouts bound each read, not the whole body: a server sending a byte now and then
would hold the run for as long as it kept sending, and one sending without end (or a gzip
bomb, decompressed as it is read) would exhaust the memory. :func:`read_bounded` stops both.

One compressing layer is decoded a network read at a time (64 KiB of gzip are 64 MiB at
most), but httpx decodes a second layer (``Content-Encoding: gzip, gzip``) of each read
in one piece: a few hundred bytes are gigabytes before any limit is checked.
:func:`compressed_twice` names such a body, which callers refuse unread.
"""

from __future__ import annotations

import time

import httpx

__all__ = ["StillArriving", "compressed_twice", "read_bounded"]

_COMPRESSING = frozenset({"gzip", "x-gzip", "deflate", "br", "zstd"})
"""The content codings httpx may decode (``br`` and ``zstd`` with their extras)."""


class StillArriving(httpx.ReadTimeout):
    """The time ran out while the body was still arriving (not a silent server)."""


def read_bounded(response: httpx.Response, *, started: float, seconds: float, most: int) -> bytes:
    """The body of the streamed ``response``, read before ``seconds`` have passed since
    ``started`` (:func:`time.monotonic`), and no more than a network read past ``most`` bytes
    (decompressed): a longer body is cut there, which the caller tells by its length.

    Raises:
        StillArriving: the body was still arriving when the time ran out.
    """
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > most:
            break
        if time.monotonic() - started > seconds:
            raise StillArriving("the body was still arriving", request=response.request)
    return b"".join(chunks)


def compressed_twice(response: httpx.Response) -> str | None:
    """``response``'s ``Content-Encoding`` when it names more than one compressing layer
    (``gzip, gzip``), whose decoding no size limit bounds; ``None`` otherwise."""
    codings = response.headers.get_list("content-encoding", split_commas=True)
    if sum(coding.strip().lower() in _COMPRESSING for coding in codings) < 2:
        return None
    return ", ".join(coding.strip() for coding in codings)[:200]
