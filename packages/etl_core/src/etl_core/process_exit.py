"""Ending a console script's process as the interpreter would, without tearing it down.

After a command has run, ``Py_FinalizeEx`` joins the threads that are not daemons, runs the
``atexit`` callbacks (logging's flush among them) and flushes stdout and stderr; then it
frees every module and object one by one and destroys what extension modules hold (DuckDB's
probe database and its catalog): 10-20 ms of a short command's exit that the OS does at once
when the process ends (issue 16, start-up). :func:`exit_process` does the first three steps
and then ends the process. Only a console script's ``main`` calls it: a caller that runs a
CLI inside its own process (a test) keeps its interpreter.

The objects left alive at exit are not finalized: a file still open and unflushed at that
point would lose its buffer. The platform closes what it writes (every store, report and
database is closed by its ``with`` block), registers no finalizer of its own, and logging
flushes its handlers from ``atexit``.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

__all__ = ["exit_process"]


def exit_process(code: object) -> NoReturn:
    """End the process with ``code`` (a ``SystemExit`` code) once threads, ``atexit`` and the
    standard streams are done, skipping the interpreter's teardown.

    A code that is not an integer (a message), or a standard stream that cannot be flushed,
    is left to the interpreter's own exit, which reports it as it always has.
    """
    status = 0 if code is None else code
    if not isinstance(status, int):
        raise SystemExit(code)
    _join_threads()
    atexit._run_exitfuncs()  # what Py_FinalizeEx runs; the callbacks are cleared after
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # the interpreter's exit reports it (and stdout's exits 120)
            raise SystemExit(code) from None
    os._exit(status)


def _join_threads() -> None:
    """Wait for every thread that is not a daemon, as the interpreter does before ``atexit``
    (a thread may start another before it ends)."""
    main = threading.main_thread()
    while pending := [
        thread
        for thread in threading.enumerate()
        if thread is not main and not thread.daemon and thread.is_alive()
    ]:
        for thread in pending:
            thread.join()
