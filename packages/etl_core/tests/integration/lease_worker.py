"""A lease holder in its own process, driven by the lease tests through files.

Usage: ``python lease_worker.py ACTION STORE_URL ENDPOINT KEY WORKDIR`` (ENDPOINT is
``-`` for a local store). The worker writes ``WORKDIR/<pid>.state`` lines as it
goes and waits (bounded) for ``WORKDIR/go`` where the test must act first.

- ``race``: wait for ``go``, try to take the lease once; print ``won <token>`` or
  ``busy``; a winner holds it until ``WORKDIR/done`` appears, then releases it.
- ``publish``: take the lease (TTL 1 s, heartbeat every 0.3 s), print
  ``holding <token>``, wait for ``go``, then publish ``KEY.published`` under the
  lease (check, then a fenced compare-and-put); print ``published`` (exit 0) or
  ``lost`` (exit 3).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from etl_core.errors import LeaseBusyError, LeaseLostError
from etl_core.storage import Records, acquire_lease, open_store

WAIT_SECONDS = 60.0


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {path}")
        time.sleep(0.02)


def say(workdir: Path, line: str) -> None:
    print(line, flush=True)
    with (workdir / f"{os.getpid()}.state").open("a") as state:
        state.write(line + "\n")


def published(store: Any) -> Records[dict[str, Any]]:
    return Records(
        store,
        decode=lambda data, key: dict(json.loads(data)),
        encode=lambda value: json.dumps(value).encode(),
    )


def main(action: str, url: str, endpoint: str, key: str, workdir: Path) -> int:
    options = {} if endpoint == "-" else {"endpoint_url": endpoint}
    with open_store(url, **options) as store:
        if action == "race":
            wait_for(workdir / "go")
            try:
                lease = acquire_lease(store, key, ttl=30, purpose="race")
            except LeaseBusyError:
                say(workdir, "busy")
                return 0
            with lease:
                say(workdir, f"won {lease.token}")
                wait_for(workdir / "done")
            return 0
        lease = acquire_lease(store, key, ttl=1, purpose="publish", heartbeat_every=0.3)
        say(workdir, f"holding {lease.token}")
        wait_for(workdir / "go")
        try:
            lease.fenced_update(
                published(store),
                f"{key}.published",
                lambda current: {"token": lease.token, "by": "worker"},
                token_of=lambda value: int(value["token"]),
            )
        except LeaseLostError:
            say(workdir, "lost")
            return 3
        say(workdir, "published")
        lease.release()
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], Path(sys.argv[5])))
