"""httpx without its command-line client: imported first by the ingest package, on purpose.

``import httpx`` also imports ``httpx._main``, its own command-line client, whenever
click, rich and pygments are installed (they are: the platform's CLI uses them), which
is about 25 ms of every ingest run's start-up (rich's console and progress, pygments'
lexers, their regular expressions). No ingestion runs that client, so when httpx is
not imported yet its ``_main`` module is marked missing, and httpx falls back to the
stub it has for that case (its ``httpx.main`` then only says the client is unavailable).
"""

from __future__ import annotations

import sys

__all__ = ["CLI_LEFT_OUT"]

CLI_LEFT_OUT = "httpx" not in sys.modules and "httpx._main" not in sys.modules
"""Whether this import left httpx's command-line client out (httpx was not imported yet)."""

if CLI_LEFT_OUT:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]  # an import of it fails
