"""The runtimes' console scripts: ``<runtime>.cli`` imported with the collector paused.

Importing a runtime's command line makes 40-50 thousand objects the collector tracks
(modules, functions, classes, contract and settings schemas) that all live until the end,
and the collector's young collections over them, some sixty, can free none: 7-15 ms of a
short command's CPU (issue 16, start-up). Each runtime's ``[project.scripts]`` entry names
its package here (``etl-file-processing = "etl_core.console_script:file_processing"``):
its ``cli`` module is imported with the collector disabled, what the import made is frozen
(never scanned again, as :func:`gc.freeze` says), the collector is enabled as it was and
the CLI's ``main`` runs. Importing ``<runtime>.cli`` directly (tests, ``__main__``) is
unchanged.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from importlib import import_module
from typing import Any

from etl_core.lanes import LANES

__all__ = ["run"]


def run(runtime: str) -> Any:
    """Import ``<runtime>.cli`` with the collector paused, then run its ``main``.

    A Ctrl-C while importing, before the runtime handles signals (a terminal's Ctrl-C
    right after the start, or one sent to a whole process group as ``make run`` gets),
    exits 130 as every runtime does on Ctrl-C, quietly: nothing was started, and the
    import's traceback would be a non-JSON block on stderr.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        cli = import_module(f"{runtime}.cli")
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
    return cli.main()


def __getattr__(name: str) -> Callable[[], Any]:
    """``etl_core.console_script:<runtime>``: the console script's entry point."""
    if name not in LANES:  # the packages whose ``cli`` a console script may name
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def entry_point() -> Any:
        return run(name)

    entry_point.__name__ = entry_point.__qualname__ = name
    return entry_point
