"""gzip of the raw archive's pages and the landing chunks, by ISA-L (``isal``).

ISA-L's igzip at level 1 compresses JSON about 3.5 times faster than zlib at level 1,
for the same size, and releases the GIL meanwhile, so the writer thread compresses
beside the walk's parsing. The output is ordinary gzip (any reader opens it), with
no timestamp in the header. ISA-L does not promise the same deflate stream for the same
input (a long test run once saw two valid encodings of one chunk), so what the lane
promises is the same lines once decompressed, never the same compressed bytes.
"""

from __future__ import annotations

from isal import igzip

__all__ = ["COMPRESS_LEVEL", "gzip_bytes"]

COMPRESS_LEVEL = 1
"""igzip's level (0-3): 1 is zlib level 1's size at a third of its time."""


def gzip_bytes(data: bytes) -> bytes:
    """``data`` as gzip bytes (``mtime`` 0: no timestamp in the header)."""
    return igzip.compress(data, COMPRESS_LEVEL, mtime=0)
