"""Reading a response body within a deadline and a size, for the API and its token endpoint.

httpx's timeouts bound each read, not the whole body: a server sending a byte now and then
would hold the run for as long as it kept sending, and one sending without end (or a gzip
bomb, decompressed as it is read) would exhaust the memory. :func:`read_bounded` stops both.
"""

from __future__ import annotations

import time

import httpx

__all__ = ["StillArriving", "read_bounded"]


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
