"""``etl-observability``: storage, database and freshness health signals."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.filesize import decimal as human_size
from rich.table import Table

from etl_core.cli import RuntimeCLI
from etl_core.metrics import Registry, push_to_gateway, render_prometheus
from etl_core.runtime import LANES, ExitCode, RuntimeSettings
from observability import db
from observability.inventory import ZONES, record_inventory_metrics, take_inventory

logger = logging.getLogger(__name__)

cli = RuntimeCLI(
    name="etl-observability",
    lane="observability",
    help="Platform monitoring: storage inventory, metrics and health signals.",
    settings=RuntimeSettings,
    recorder=db.run_recorder,
)
app, out, err = cli.app, cli.out, cli.err
main = cli.main


@app.command()
def inventory(
    ctx: typer.Context,
    zone: Annotated[
        list[str] | None, typer.Option("--zone", help=f"Zones to walk {ZONES}.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    metrics_file: Annotated[
        Path | None, typer.Option("--metrics-file", help="Also write Prometheus text here.")
    ] = None,
) -> None:
    """Objects, bytes and newest object per zone and dataset of the store."""
    session = cli.session(ctx)
    unknown = sorted(set(zone or ()) - set(ZONES))
    if unknown:
        cli.notice(
            f"unknown zone(s) {unknown}; expected some of {list(ZONES)}", level=logging.ERROR
        )
        raise typer.Exit(ExitCode.USAGE)
    run = session.record_run("inventory", parameters={"zones": list(zone or ZONES)})
    store = session.open_store()
    entries = take_inventory(store, zone or ZONES)
    run.count(inputs=sum(e.objects for e in entries), outputs=len(entries))
    registry = Registry()
    record_inventory_metrics(entries, registry, now=datetime.now(UTC))
    if metrics_file is not None:
        metrics_file.write_text(render_prometheus(registry))
    if session.settings.pushgateway_url:
        push_to_gateway(session.settings.pushgateway_url, "etl_observability_inventory", registry)
    if as_json:
        rows = [{**vars(e), "newest": e.newest.isoformat() if e.newest else None} for e in entries]
        out.print_json(json.dumps({"store": store.url, "datasets": rows}))
        return
    table = Table("zone", "dataset", "objects", "size", "newest (UTC)", title=store.url)
    for e in entries:
        newest = e.newest.strftime("%Y-%m-%d %H:%M:%S") if e.newest else "-"
        table.add_row(e.zone, e.dataset, str(e.objects), human_size(e.bytes), newest)
    if not entries:
        table.caption = "the store is empty"
    out.print(table)


@app.command()
def database(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="The platform database (default: the database_url setting)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    metrics_file: Annotated[
        Path | None, typer.Option("--metrics-file", help="Also write Prometheus text here.")
    ] = None,
) -> None:
    """Ledger health from the platform database (needs the 'schema' extra).

    The health signals (running runs, open quarantine, ...) and the last successful run
    of each lane; ``--json`` prints the signals.
    """
    session = cli.session(ctx).with_flags({"database_url": database_url})
    db.connect(session.settings.database_url, feature="etl-observability database")
    signals = db.ledger_gauges()
    latest = db.last_successes()
    registry = Registry()
    gauge = registry.gauge(
        "etl_observability_ledger_entries",
        "Ledger entries per health signal (running runs, open quarantine, ...).",
        ("signal",),
    )
    for signal, count in signals.items():
        gauge.labels(signal=signal).set(count)
    succeeded = registry.gauge(
        "etl_observability_last_success_timestamp_seconds",
        "When the latest successful (or partial) run of each lane finished (Unix time).",
        ("lane",),
    )
    for lane, run in latest.items():
        if run.finished_at is not None:
            succeeded.labels(lane=lane).set(run.finished_at.timestamp())
    if metrics_file is not None:
        metrics_file.write_text(render_prometheus(registry))
    if as_json:
        out.print_json(json.dumps(signals))
        return
    table = Table("signal", "entries")
    for signal, count in signals.items():
        table.add_row(signal, str(count))
    out.print(table)
    runs = Table("lane", "last success (UTC)", "job", "dataset", "run", title="last success")
    for lane in LANES:
        last = latest.get(lane)
        if last is None or last.finished_at is None:
            runs.add_row(lane, "never", "-", "-", "-")
            continue
        when = last.finished_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        runs.add_row(lane, when, last.job, last.dataset or "-", last.run_id)
    out.print(runs)
