"""``ingest replay`` and ``ingest infer``: the raw archive put to use, without ingesting.

``ingest replay --source S --endpoint E --run R [--date D]`` lands a finished run's records
again from its archived pages (SHA-256 checked against the manifest first), with the
source configuration as it is now, under the same chunk keys; exit 0, 3 when items were
set aside as dead letters, 1 when a page does not match the manifest (nothing written),
2 when there is no such finished run. ``ingest infer --source S --endpoint E [--run R]
[--pages N]`` prints a dataset contract proposed from a sample of the API (or of an
archived run).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from data_pipeline.errors import EndpointBusyError
from data_pipeline.settings import PipelineSettings
from etl_core.cli import RuntimeCLI
from etl_core.errors import LeaseBusyError
from etl_core.runtime import ExitCode, Session
from etl_core.storage import Lease, ObjectStore, acquire_lease

if TYPE_CHECKING:  # the API sources' model is loaded by the commands that read sources
    from etl_core.contracts import ContractSet, Endpoint, Source, SourceSet

__all__ = ["add_archive_commands"]

Config = tuple["ContractSet", "SourceSet"]

SourceName = Annotated[
    str, typer.Option("--source", help="The API source (sources/<source>.toml).")
]
EndpointName = Annotated[str, typer.Option("--endpoint", help="The endpoint.")]
RunDate = Annotated[
    str | None,
    typer.Option("--date", help="The run folder's dt=YYYY-MM-DD (found by listing when absent)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def add_archive_commands(
    app: typer.Typer,
    cli: RuntimeCLI[PipelineSettings],
    config: Callable[[Session[PipelineSettings]], Config],
) -> None:
    """Add ``replay`` and ``infer`` to the ``ingest`` group; ``config`` loads
    ``(contracts, sources)`` for a session."""

    @app.command("replay")
    def replay(
        ctx: typer.Context,
        source: SourceName,
        endpoint: EndpointName,
        run: Annotated[str, typer.Option("--run", help="The run id (its raw archive folder).")],
        date_: RunDate = None,
        as_json: JsonOption = False,
    ) -> None:
        """Land a finished run's records again from its raw archive (no API call)."""
        from data_pipeline.ingest.replay import replay_run  # httpx: only when used

        session: Session[PipelineSettings] = cli.session(ctx)
        contracts, sources = config(session)
        src, ep = _endpoint(sources, source, endpoint)
        contract = contracts.get(ep.dataset) if ep.dataset in contracts.datasets else None
        with session.open_store() as store:
            dt = _run_date(store, src, ep, run, date_)
            record = session.record_run(
                "ingest replay", dataset=ep.dataset, parameters={"run": run, "dt": dt.isoformat()}
            )
            with _endpoint_lease(store, src, ep, float(session.settings.lease_seconds)):
                outcome = replay_run(store, src, ep, run, dt, contract)
        record.count(inputs=outcome.pages, outputs=outcome.chunks, rows_written=outcome.records)
        if as_json:
            cli.out.print(
                json.dumps(outcome.to_dict()), markup=False, highlight=False, soft_wrap=True
            )
        else:
            cli.out.print(
                f"replayed {src.source}/{ep.name} run {run} (dt={outcome.dt}): {outcome.pages} "
                f"page(s), {outcome.records} record(s) in {outcome.chunks} chunk(s)"
                + (f", {outcome.removed} old chunk(s) removed" if outcome.removed else "")
                + (
                    f", {outcome.dead_letters} dead letter(s) set aside"
                    if outcome.dead_letters
                    else ""
                ),
                markup=False,
                highlight=False,
            )
        if outcome.dead_letters:
            raise typer.Exit(ExitCode.PARTIAL)

    @app.command("infer")
    def infer(
        ctx: typer.Context,
        source: SourceName,
        endpoint: EndpointName,
        run: Annotated[
            str | None, typer.Option("--run", help="Sample this archived run, not the API.")
        ] = None,
        date_: RunDate = None,
        pages: Annotated[
            int, typer.Option("--pages", min=1, max=100, help="Pages to request from the API.")
        ] = 3,
        as_json: JsonOption = False,
    ) -> None:
        """Print a dataset contract proposed from sampled records (columns and types seen)."""
        from data_pipeline.ingest.client import ApiClient  # httpx: only when used
        from data_pipeline.ingest.infer import columns, contract_text, sample_api, sample_run

        session: Session[PipelineSettings] = cli.session(ctx)
        src, ep = _endpoint(config(session)[1], source, endpoint)
        if run is not None:
            with session.open_store() as store:
                sample = sample_run(store, src, ep, run, _run_date(store, src, ep, run, date_))
        else:
            logging.getLogger("httpx").setLevel(logging.WARNING)  # its lines carry query strings
            client = ApiClient(src)
            try:
                sample = sample_api(client, src, ep, pages)
            finally:
                client.close()
        text = contract_text(src, ep, sample)
        if as_json:
            document = {
                "records": sample.profile.records,
                "refused": sample.refused,
                "origin": sample.origin,
                "columns": list(columns(sample)),
                "contract": text,
            }
            cli.out.print(json.dumps(document), markup=False, highlight=False, soft_wrap=True)
            return
        cli.out.print(text, markup=False, highlight=False, soft_wrap=True, end="")


def _endpoint(sources: SourceSet, source: str, endpoint: str) -> tuple[Source, Endpoint]:
    src = sources.get(source)
    return src, src.endpoint(endpoint)


def _run_date(
    store: ObjectStore, source: Source, endpoint: Endpoint, run: str, text: str | None
) -> date:
    if text is None:
        from data_pipeline.ingest.replay import find_run

        return find_run(store, source.source, endpoint.name, run)
    from etl_core.contracts import parse_day

    return parse_day(text, "--date")


def _endpoint_lease(store: ObjectStore, source: Source, endpoint: Endpoint, ttl: float) -> Lease:
    """The endpoint's lease: a replay and an ingest of one endpoint never overlap."""
    from data_pipeline.ingest import lease_key

    try:
        return acquire_lease(
            store,
            lease_key(source.source, endpoint.name),
            ttl=ttl,
            purpose=f"ingest replay {source.source}/{endpoint.name}",
            heartbeat_every=ttl / 3,
        )
    except LeaseBusyError as busy:
        raise EndpointBusyError(
            f"endpoint {source.source}/{endpoint.name} is being ingested by {busy.holder}; "
            "replay it when that run is over",
            key=busy.key,
            holder=busy.holder,
            token=busy.token,
            url=busy.url,
            retry_after=busy.retry_after,
        ) from busy
