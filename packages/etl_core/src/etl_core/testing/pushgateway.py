"""The machine's Prometheus Pushgateway, started on 127.0.0.1 for a test and stopped after.

:func:`running_pushgateway` starts the binary of the Debian package
``prometheus-pushgateway`` on a free port, in-memory only, and yields its URL once it
answers ``/-/ready``; :func:`scrape` reads back what it holds. A machine without the
binary skips the test (fails it under ``ETL_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from etl_core.testing.ports import free_port
from etl_core.testing.services import service_unavailable

__all__ = ["find_binary", "running_pushgateway", "scrape"]


def find_binary(*names: str) -> str | None:
    """The first of ``names`` on ``PATH`` or in ``/usr/bin``, or ``None``."""
    for name in names:
        found = shutil.which(name) or (
            f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
        )
        if found:
            return found
    return None


@contextlib.contextmanager
def running_pushgateway(*options: str, login: Mapping[str, str] | None = None) -> Iterator[str]:
    """The Pushgateway's URL while it runs with ``options`` (``login``: the headers its
    readiness probe needs behind Basic authentication)."""
    binary = find_binary("prometheus-pushgateway", "pushgateway")
    if binary is None:
        service_unavailable(
            "pushgateway", "binary not found (Debian package 'prometheus-pushgateway')"
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            "--persistence.file=",
            "--log.level=warn",
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(url, process, dict(login or {}))
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def _wait_ready(url: str, process: subprocess.Popen[bytes], login: dict[str, str]) -> None:
    for _ in range(100):
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            service_unavailable("pushgateway", f"exited with {process.returncode}: {stderr}")
        try:
            ready = urllib.request.Request(f"{url}/-/ready", headers=login)
            with urllib.request.urlopen(ready, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    service_unavailable("pushgateway", f"not ready at {url} after 10 seconds")


def scrape(url: str) -> list[str]:
    """The lines of the gateway's ``/metrics``."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        body: bytes = response.read()
    return body.decode("utf-8").splitlines()
