"""The compose stack's `example` service, before it serves the example API.

1. Writes the retail example's contracts (``examples/retail/config``) into the config
   directory every runtime service reads (``ETL_CONFIG_DIR``, the `config` volume),
   with the API source's ``base_url`` pointed at the `example` service
   (``--api-url``): the template says ``http://127.0.0.1:8000``, where a runtime in
   another container would find nothing. With ``--api-schedule CRON``, a source that
   declares no ``schedule`` gets one, so the data-pipeline scheduler ingests the API
   continuously (``make run`` calls ``ingest`` itself and needs none).
2. Uploads the vendor drops (``landing/``) and reference tables (``reference/``) to the
   store (``ETL_STORAGE_URL``) with the retail example's own ``deliver``
   (``examples/retail/run.py``), skipping files already there with the same content,
   so a restart uploads nothing twice. The workers and schedulers take it from there.

Run from the repository root (the service's working directory is the repository,
mounted read-only)::

    python compose/example.py --api-url http://example:8000 --api-schedule '*/2 * * * *'

Exit 0 when done, 2 on a bad argument or setting (the message names it).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from etl_core.errors import EtlError
from etl_core.runtime import RuntimeSettings, open_session

EXAMPLE = Path("examples/retail")
RETAIL = Path(__file__).resolve().parent.parent / "examples" / "retail"
"""The retail example beside this script, whose ``run.py`` delivers the drops."""
API_SOURCE = "retail_footfall"
"""The example's API source (``config/sources/retail_footfall.toml``)."""
ZONES = ("landing", "reference")
"""The example's directories uploaded as they are, each to the zone of its name."""


def write_config(
    template: Path, target: Path, *, source: str, api_url: str, schedule: str | None = None
) -> int:
    """Make ``target`` a copy of ``template`` (files not in it removed) with ``source``'s
    ``base_url`` set to ``api_url`` and, when it has none, its ``schedule`` set to
    ``schedule``; each file replaced whole. Returns the files written."""
    wanted = {p.relative_to(template) for p in template.rglob("*") if p.is_file()}
    for stale in [p for p in target.rglob("*") if p.is_file()]:
        if stale.relative_to(target) not in wanted:
            stale.unlink()
    for relative in sorted(wanted):
        text = (template / relative).read_text(encoding="utf-8")
        if relative == Path("sources", f"{source}.toml"):
            text = _point_at(text, relative, api_url, schedule)
        _replace(target / relative, text)
    return len(wanted)


def _point_at(text: str, relative: Path, api_url: str, schedule: str | None) -> str:
    line = f'base_url = "{api_url}"  # the compose service `example` (compose/example.py)'
    if schedule is not None and not re.search(r"^schedule\s*=", text, flags=re.MULTILINE):
        line += f'\nschedule = "{schedule}"  # compose/example.py --api-schedule'
    pointed, count = re.subn(r"^base_url\s*=.*$", line, text, count=1, flags=re.MULTILINE)
    if count != 1:
        raise SystemExit(f"{relative}: no top-level base_url line to point at {api_url}")
    return pointed


def _replace(path: Path, text: str) -> None:
    """Write ``path`` under a temporary name, then rename it over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=".tmp-", delete=False
    ) as temporary:
        temporary.write(text)
    os.replace(temporary.name, path)


def retail_deliver() -> Callable[..., tuple[int, int]]:
    """The retail example's own ``deliver`` (``examples/retail/run.py``): each file of a
    directory put into a zone unless the same content is there; (uploaded, already there)."""
    sys.path.insert(0, str(RETAIL))  # run.py imports its siblings (api, summary) by name
    deliver: Callable[..., tuple[int, int]] = importlib.import_module("run").deliver
    return deliver


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--api-url", required=True, help="where the runtimes reach the example API")
    parser.add_argument(
        "--api-schedule",
        metavar="CRON",
        help="ingest the API on this five-field cron (UTC) when its source sets no schedule",
    )
    parser.add_argument(
        "--example", type=Path, default=EXAMPLE, help="the example (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        session = open_session("example", RuntimeSettings)
        config = Path(session.settings.config_dir)
        written = write_config(
            args.example / "config",
            config,
            source=API_SOURCE,
            api_url=args.api_url,
            schedule=args.api_schedule,
        )
        print(f"contracts: {written} file(s) -> {config}", flush=True)
        deliver = retail_deliver()
        with session.open_store() as store:
            for zone in ZONES:
                uploaded, unchanged = deliver(store, args.example / zone, zone)
                print(f"{zone}: {uploaded} uploaded, {unchanged} already there", flush=True)
    except EtlError as exc:
        print(f"example: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
