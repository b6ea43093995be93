"""Artifacts as stored: gzip where it pays (the CSVs and the report's JSON shrink several
times over; a PNG does not), read back whatever they were stored as. A gzip stream begins 1f 8b, which
no CSV, JSON or PNG of ours does, so rows stored before compression read as they were."""

from __future__ import annotations

import gzip

GZIP_MAGIC = b"\x1f\x8b"
PNG_MAGIC = b"\x89PNG"


def pack(data: bytes) -> bytes:
    if data.startswith(PNG_MAGIC) or len(data) < 256:
        return data
    return gzip.compress(data, compresslevel=6, mtime=0)


def unpack(data: bytes) -> bytes:
    return gzip.decompress(data) if data.startswith(GZIP_MAGIC) else data
