"""The object-store layout: zones and keys (placeholder until the layout module lands)."""

from __future__ import annotations

__all__ = ["split_landing_key"]


def split_landing_key(key: str) -> tuple[str, str] | None:
    """``(source, name)`` of ``landing/<source>/<name>``; ``None`` outside landing/."""
    zone, _, rest = key.lstrip("/").partition("/")
    source, _, name = rest.rpartition("/")
    if zone != "landing" or not source or not name:
        return None
    return source, name
