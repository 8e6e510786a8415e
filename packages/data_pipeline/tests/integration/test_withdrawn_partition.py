"""A day validated/ no longer publishes (its only delivery moved to another day, as the
file lane's withdrawal notice says) keeps neither its curated output nor its loaded rows:
``run`` withdraws it, a killed run's next run finishes, a day never built is not touched.
A day whose deliveries are gone without a notice newer than its curated partition (a
lifecycle rule, a hand deletion) keeps both."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from data_pipeline import withdraw
from data_pipeline.backfill import plan_backfill
from data_pipeline.errors import InputGoneError, MissingPartitionError, PublishFencedError
from data_pipeline.layout import new_generation, publish_partition, read_manifest
from data_pipeline.lease import lease_key, partition_lease
from data_pipeline.pipeline import (
    PartitionOutcome,
    pending_partitions,
    process_partition,
    retire_spent_notices,
)
from data_pipeline.settings import PipelineSettings
from data_pipeline.withdraw import withdraw_partition, withdrawal_key
from etl_core.artifacts import read_deliveries, read_withdrawal_notice
from etl_core.contracts import Contract, load_contracts
from etl_core.errors import LeaseLostError, StorageError
from etl_core.faults import FAULT_ENV, Step
from etl_core.layout import (
    delivery_manifest_key,
    manifest_key,
    quality_report_key,
    validated_key,
    validated_prefix,
    withdrawal_notice_key,
)
from etl_core.retry import RetryPolicy
from etl_core.storage import LocalObjectStore, ObjectInfo, ObjectStore, open_store
from etl_core.testing import capture_logs
from etl_core.testing.deliveries import notice_withdrawal, publish_delivery
from etl_core.testing.scripts import run_script

Cli = Callable[..., subprocess.CompletedProcess[str]]

MISDATED = date(2026, 2, 11)  # 2026-11-02 read with day and month swapped
RIGHT = date(2026, 11, 3)
LANDING = "landing/pos/pos_20261103.csv"
NAME = "pos_20261103.csv"


def deliver(store: ObjectStore, retail: Any, dt: date) -> None:
    """The vendor's one file of 2026-11-03, published on ``dt``."""
    files = {NAME: retail.rows(RIGHT.isoformat(), 30).encode()}
    publish_delivery(store, "pos", dt, files, landing=LANDING, rows=30)


def move(store: ObjectStore, retail: Any, *, ahead: timedelta = timedelta(0)) -> None:
    """The re-delivery of the key publishes on the right day and removes the misdated one,
    as the file lane does: its withdrawal notice (dated by a host clock ``ahead``), the old
    delivery manifest, its members."""
    notice_move(store, retail, ahead=ahead)
    remove_moved(store)


def notice_move(store: ObjectStore, retail: Any, *, ahead: timedelta = timedelta(0)) -> None:
    """The file lane's first steps of a move: the right day published, the misdated day's
    withdrawal notice written (its delivery still published there)."""
    deliver(store, retail, RIGHT)
    moved_to = [validated_prefix("pos", RIGHT)]
    data = validated_key("pos", MISDATED, NAME)
    at = datetime.now(UTC) + ahead
    emptied = [m.delivery.key for m in read_deliveries(store, "pos", MISDATED)] == [LANDING]
    # the very object withdrawn (when still there), as the file lane notes it
    etags = {data: store.head(data).etag} if store.exists(data) else {}
    notice_withdrawal(
        store, "pos", MISDATED, landing=LANDING, moved_to=moved_to, data_keys=[data], at=at,
        emptied=emptied, data_etags=etags,
    )  # fmt: skip


def remove_moved(store: ObjectStore) -> None:
    """The file lane's last steps of a move: the misdated delivery's manifest, its members."""
    data = validated_key("pos", MISDATED, NAME)
    store.delete(delivery_manifest_key("pos", MISDATED, LANDING))
    store.delete(data)
    store.delete(quality_report_key(data))


def run_pending(
    store: ObjectStore, contract: Contract, settings: PipelineSettings
) -> list[PartitionOutcome]:
    """What ``run --no-load`` does: the spent withdrawal notices removed, then every pending
    partition, each if still pending."""
    retire_spent_notices(store, contract, lease_seconds=settings.lease_seconds)
    return [
        process_partition(store, contract, p.dt, settings, load=False, only_if_pending=True)
        for p in pending_partitions(store, contract, load=False)
    ]


def expire(store: ObjectStore, dt: date) -> None:
    """A lifecycle rule (or an operator) deletes the day's validated partition: no notice."""
    for info in list(store.list(validated_prefix("pos", dt))):
        store.delete(info.key)


def curated(store: ObjectStore, dt: date) -> list[str]:
    return [info.key for info in store.list(f"curated/pos/dt={dt.isoformat()}/")]


@pytest.fixture
def pipeline(cli_on: Callable[[Path], Cli], tmp_path: Path, local_store: ObjectStore) -> Cli:
    return cli_on(tmp_path / "store")


@pytest.fixture
def database(postgres_url: str, tmp_path: Path) -> str:
    migrated = run_script("etl-schema", "migrate", cwd=tmp_path, env={"DATABASE_URL": postgres_url})
    assert migrated.returncode == 0, migrated.stderr
    return postgres_url


def days(url: str) -> dict[str, int]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT dt::text, count(*) FROM retail_sales_transaction GROUP BY dt"
        ).fetchall()
    return dict(rows)


@pytest.mark.postgres
def test_a_day_whose_delivery_moved_loses_its_curated_output_and_loaded_rows(
    pipeline: Cli, database: str, local_store: ObjectStore, retail: Any
) -> None:
    env = {"DATABASE_URL": database}
    deliver(local_store, retail, MISDATED)
    first = pipeline("run", env=env)
    assert first.returncode == 0, first.stderr
    assert days(database) == {"2026-02-11": 30, "2026-11-01": 200, "2026-11-02": 200}

    move(local_store, retail)
    again = pipeline("run", env=env)

    assert again.returncode == 0, again.stderr
    assert "2 partition(s) processed, 0 failed, 1 withdrawn" in again.stdout, again.stdout
    assert days(database) == {"2026-11-01": 200, "2026-11-02": 200, "2026-11-03": 30}
    assert curated(local_store, MISDATED) == []
    assert "pos dt=2026-02-11 withdrawn" in again.stderr
    (warned,) = [json.loads(line) for line in again.stderr.splitlines() if "withdrawn:" in line]
    assert warned["level"] == "warning"
    record = json.loads(local_store.read_bytes(withdrawal_key("pos", MISDATED)))
    assert (record["outcome"], record["rows"], record["rows_deleted"]) == ("withdrawn", 30, True)
    assert list(record["inputs"]) == [validated_key("pos", MISDATED, NAME)]
    assert not local_store.exists("_state/data_pipeline/loads/pos/dt=2026-02-11.json")
    settled = pipeline("run", env=env)
    assert "0 partition(s) processed, 0 failed" in settled.stdout, settled.stdout
    assert "withdrawn" not in settled.stdout


@pytest.mark.postgres
def test_a_run_killed_between_the_curated_removal_and_the_row_deletion_is_finished_next_run(
    pipeline: Cli, database: str, local_store: ObjectStore, retail: Any
) -> None:
    env = {"DATABASE_URL": database}
    deliver(local_store, retail, MISDATED)
    assert pipeline("run", env=env).returncode == 0
    move(local_store, retail)

    killed = pipeline("run", env={**env, FAULT_ENV: Step.WITHDRAW.value})

    assert killed.returncode == -9, killed.stderr
    assert curated(local_store, MISDATED) == []
    assert days(database)["2026-02-11"] == 30  # the rows outlived the curated output
    finished = pipeline("run", env=env)
    assert finished.returncode == 0, finished.stderr
    assert "1 withdrawn" in finished.stdout, finished.stdout
    assert days(database) == {"2026-11-01": 200, "2026-11-02": 200, "2026-11-03": 30}


@pytest.mark.postgres
def test_a_backfill_over_a_withdrawn_day_removes_it_and_notes_it_in_its_ledger(
    pipeline: Cli, database: str, local_store: ObjectStore, retail: Any
) -> None:
    env = {"DATABASE_URL": database}
    deliver(local_store, retail, MISDATED)
    assert pipeline("run", env=env).returncode == 0
    move(local_store, retail)

    backfill = pipeline(
        "backfill", "--dataset", "pos", "--from", "2026-02-01", "--to", "2026-02-28", env=env
    )

    assert backfill.returncode == 0, backfill.stderr
    assert "1 succeeded, 0 failed, 0 already done, 0 rows, 1 withdrawn" in backfill.stdout
    assert "2026-02-11" not in days(database)
    assert curated(local_store, MISDATED) == []
    with psycopg.connect(database) as connection:
        rows = connection.execute(
            "SELECT partition_date::text, state, last_error FROM etl_backfill_partition"
        ).fetchall()
    assert rows == [("2026-02-11", "succeeded", rows[0][2])]
    assert rows[0][2].startswith("withdrawn:")

    (job_id,) = re.findall(r"backfill job (\S+):", backfill.stdout)
    shown = pipeline("backfill", "--dataset", "pos", "--status", job_id, env=env)
    assert shown.returncode == 0, shown.stderr
    (line,) = [line for line in shown.stdout.splitlines() if "2026-02-11" in line]
    assert "withdrawn" in line.split("│")[2], line  # its state, not `succeeded` with 0 rows
    assert "note" in shown.stdout  # the column says what a succeeded one carries
    assert "1 withdrawn" in shown.stdout, shown.stdout
    assert "1 succeeded" not in shown.stdout, shown.stdout


def test_a_partly_withdrawn_day_is_rebuilt_and_a_day_never_built_is_left_alone(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """On the local store and on S3: transform only (no database)."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    other = {"other.csv": retail.rows("2026-02-11", 5).encode()}
    publish_delivery(store, "pos", MISDATED, other, landing="landing/pos/other.csv", rows=5)

    (built,) = run_pending(store, contract, settings)
    assert built.transform is not None
    assert built.transform.rows == 35
    move(store, retail)  # the other delivery of the day stays
    rebuilt = {o.dt: o for o in run_pending(store, contract, settings)}
    assert not rebuilt[MISDATED].withdrawn
    assert rebuilt[MISDATED].transform is not None
    assert rebuilt[MISDATED].transform.rows == 5
    assert rebuilt[RIGHT].transform is not None
    assert not store.exists(withdrawal_key("pos", MISDATED))

    # the other delivery moves too: noticed after the rebuild, so it applies
    notice_withdrawal(store, "pos", MISDATED, landing="landing/pos/other.csv")
    store.delete(delivery_manifest_key("pos", MISDATED, "landing/pos/other.csv"))
    (withdrawn,) = run_pending(store, contract, settings)
    assert (withdrawn.dt, withdrawn.withdrawn, withdrawn.transform) == (MISDATED, True, None)
    assert curated(store, MISDATED) == []
    assert run_pending(store, contract, settings) == []
    # a backfill's unit planned before the withdrawal finds nothing left to do
    again = process_partition(store, contract, MISDATED, settings, load=False)
    assert (again.withdrawn, again.skipped, again.transform) == (True, "withdrawn earlier", None)
    with pytest.raises(MissingPartitionError):  # a day never built still fails, naming it
        process_partition(store, contract, date(2026, 2, 12), settings, load=False)
    assert curated(store, date(2026, 2, 12)) == []
    assert not store.exists(withdrawal_key("pos", date(2026, 2, 12)))


@pytest.mark.postgres
def test_a_day_whose_validated_partition_was_deleted_without_a_notice_keeps_its_output_and_rows(
    pipeline: Cli, database: str, local_store: ObjectStore, retail: Any
) -> None:
    """A lifecycle rule expiring validated/ (or a hand deletion) is no withdrawal: curated is
    the product, and the loaded rows stay. Nothing is planned for the day, nor warned."""
    env = {"DATABASE_URL": database}
    deliver(local_store, retail, MISDATED)
    assert pipeline("run", env=env).returncode == 0
    built = curated(local_store, MISDATED)
    expire(local_store, MISDATED)

    again = pipeline("run", env=env)

    assert again.returncode == 0, again.stderr
    assert "0 partition(s) processed, 0 failed" in again.stdout, again.stdout
    assert "withdrawn" not in again.stdout + again.stderr
    assert curated(local_store, MISDATED) == built
    assert days(database)["2026-02-11"] == 30
    assert local_store.exists("_state/data_pipeline/loads/pos/dt=2026-02-11.json")
    assert not local_store.exists(withdrawal_key("pos", MISDATED))
    backfill = pipeline(
        "backfill", "--dataset", "pos", "--from", "2026-02-01", "--to", "2026-02-28", env=env
    )
    assert backfill.returncode == 0, backfill.stderr
    assert "0 succeeded, 0 failed" in backfill.stdout, backfill.stdout
    assert curated(local_store, MISDATED) == built
    assert days(database)["2026-02-11"] == 30


def test_a_notice_older_than_the_curated_partition_keeps_it_and_a_newer_one_withdraws_it(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """A day withdrawn long ago, republished and rebuilt since, then expired by a lifecycle
    rule, is kept: its notice is of the earlier withdrawal. On the local store and on S3."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    notice_withdrawal(
        store, "pos", MISDATED, landing=LANDING, at=datetime.now(UTC) - timedelta(days=90)
    )
    deliver(store, retail, MISDATED)

    (built,) = run_pending(store, contract, settings)
    assert built.transform is not None
    expire(store, MISDATED)
    assert run_pending(store, contract, settings) == []
    assert plan_backfill(store, contract, MISDATED, MISDATED, load=False) == []
    kept = process_partition(store, contract, MISDATED, settings, load=False, only_if_pending=True)
    assert (kept.skipped, kept.withdrawn) == ("done elsewhere", False)
    assert curated(store, MISDATED) != []

    notice_withdrawal(store, "pos", MISDATED, landing=LANDING)  # the day moved again
    assert [p.dt for p in plan_backfill(store, contract, MISDATED, MISDATED)] == [MISDATED]
    (withdrawn,) = run_pending(store, contract, settings)
    assert (withdrawn.dt, withdrawn.withdrawn) == (MISDATED, True)
    assert curated(store, MISDATED) == []
    assert not store.exists(withdrawal_notice_key("pos", MISDATED))  # consumed


def test_a_build_that_read_the_delivery_before_its_notice_and_published_after_is_withdrawn(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """A transform that started before the file lane moved the delivery away computed the
    withdrawn data, even when its manifest was published after the notice: the notice is
    compared with the computation's start, so the moved rows are not kept twice."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    (built,) = run_pending(store, contract, settings)
    manifest = read_manifest(store, "pos", MISDATED)
    assert built.transform is not None
    assert manifest is not None
    started = datetime.fromisoformat(manifest.started_at)
    published = datetime.fromisoformat(manifest.published_at)
    assert started < published
    between = started + (published - started) / 2
    notice_withdrawal(store, "pos", MISDATED, landing=LANDING, at=between)
    expire(store, MISDATED)
    (withdrawn,) = run_pending(store, contract, settings)
    assert (withdrawn.dt, withdrawn.withdrawn) == (MISDATED, True)
    assert curated(store, MISDATED) == []


def test_a_build_that_read_the_delivery_after_its_notice_and_before_its_removal_is_withdrawn(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """The file lane writes its notice, then removes the delivery: a build started between
    the two (so after the notice) lists and reads the withdrawn delivery. Its curated
    partition names that delivery's data key, so the notice applies to it whatever the
    times say, and the moved rows are not kept twice. On the local store and on S3."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    notice_move(store, retail)  # the notice is written, the delivery is still there

    built = process_partition(store, contract, MISDATED, settings, load=False)
    remove_moved(store)  # the file lane finishes the move

    manifest = read_manifest(store, "pos", MISDATED)
    assert built.transform is not None
    assert manifest is not None
    assert validated_key("pos", MISDATED, NAME) in manifest.inputs
    ran = {o.dt: o for o in run_pending(store, contract, settings)}
    assert ran[MISDATED].withdrawn
    assert curated(store, MISDATED) == []
    assert not store.exists(withdrawal_notice_key("pos", MISDATED))  # consumed
    assert run_pending(store, contract, settings) == []  # settled


def test_a_backfill_unit_of_a_day_whose_only_delivery_moved_before_it_was_built_skips_it(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """A backfill planned a day never built; the file lane moved its only delivery away
    before the day's unit ran. Nothing is built or withdrawn, and the unit says the day was
    withdrawn instead of failing as if its input were missing."""
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(local_store, retail, MISDATED)
    planned = plan_backfill(local_store, contract, MISDATED, MISDATED, load=False)
    assert [p.dt for p in planned] == [MISDATED]
    move(local_store, retail)

    outcome = process_partition(
        local_store, contract, MISDATED, settings, load=False, purpose="backfill", wait_busy=True
    )

    assert (outcome.withdrawn, outcome.transform) == (True, None)
    assert outcome.skipped == "withdrawn before it was built"
    assert curated(local_store, MISDATED) == []
    assert not local_store.exists(withdrawal_key("pos", MISDATED))  # nothing was withdrawn
    # a day built and kept (its old notice names no key and predates the build), its input
    # expired since, still fails naming its missing input: it was built, not withdrawn
    kept = date(2026, 2, 12)
    notice_withdrawal(
        local_store, "pos", kept, landing=LANDING, at=datetime.now(UTC) - timedelta(days=90)
    )
    publish_delivery(
        local_store, "pos", kept, {"k.csv": retail.rows("2026-02-12", 3).encode()}, rows=3
    )
    process_partition(local_store, contract, kept, settings, load=False)
    expire(local_store, kept)
    with pytest.raises(MissingPartitionError):
        process_partition(local_store, contract, kept, settings, load=False, purpose="backfill")
    assert curated(local_store, kept) != []


def test_a_backfill_unit_of_a_day_moved_away_before_it_was_built_skips_it_after_a_run_too(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """A scheduled ``run`` between the move and the backfill's unit finds the day's notice
    spent (nothing built, no input) and removes it: the unit still says the day was
    withdrawn before it was built, never fails as if its input were lost. On the local
    store and on S3."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    assert [p.dt for p in plan_backfill(store, contract, MISDATED, MISDATED)] == [MISDATED]
    move(store, retail)
    run_pending(store, contract, settings)  # the schedule's cycle: RIGHT built, notice spent
    assert not store.exists(withdrawal_notice_key("pos", MISDATED))

    outcome = process_partition(
        store, contract, MISDATED, settings, load=False, purpose="backfill", wait_busy=True
    )

    assert (outcome.withdrawn, outcome.transform) == (True, None)
    assert outcome.skipped == "withdrawn before it was built"
    assert curated(store, MISDATED) == []
    assert run_pending(store, contract, settings) == []  # settled
    # republished (moved back) and built since, then its input lost: lost, not withdrawn
    deliver(store, retail, MISDATED)
    assert process_partition(store, contract, MISDATED, settings, load=False).transform
    expire(store, MISDATED)
    with pytest.raises(MissingPartitionError, match=r"dt=2026-02-11"):
        process_partition(store, contract, MISDATED, settings, load=False, purpose="backfill")
    assert curated(store, MISDATED) != []


def test_a_backfill_unit_of_a_day_whose_other_delivery_was_lost_fails_naming_its_input(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """A backfill planned a day never built, published by two deliveries; the file lane
    moved one of them away (its notice), then the day's validated partition was deleted by
    mistake (or expired), the other delivery's data with it. The day was not withdrawn: its
    unit fails naming the missing input, never says 'withdrawn before it was built'."""
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    other = {"other.csv": retail.rows("2026-02-11", 5).encode()}
    publish_delivery(store, "pos", MISDATED, other, landing="landing/pos/other.csv", rows=5)
    assert [p.dt for p in plan_backfill(store, contract, MISDATED, MISDATED)] == [MISDATED]
    move(store, retail)  # the other delivery stays on the day
    expire(store, MISDATED)  # an operator deletes validated/ of the day by mistake

    with pytest.raises(MissingPartitionError, match=r"dt=2026-02-11"):
        process_partition(store, contract, MISDATED, settings, load=False, purpose="backfill")


def test_a_notice_dated_ahead_by_the_file_lane_clock_keeps_a_day_rebuilt_without_its_delivery(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """The file lane's host clock runs minutes ahead of the pipeline's: a day rebuilt from
    its other delivery right after one moved away has a curated partition whose start is
    older than the notice. That build never read the withdrawn delivery (the notice names
    its keys): a lifecycle rule expiring the day later withdraws nothing."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    other = {"other.csv": retail.rows("2026-02-11", 5).encode()}
    publish_delivery(store, "pos", MISDATED, other, landing="landing/pos/other.csv", rows=5)

    (built,) = run_pending(store, contract, settings)
    assert built.transform is not None
    move(store, retail, ahead=timedelta(minutes=5))
    rebuilt = {o.dt: o for o in run_pending(store, contract, settings)}
    assert rebuilt[MISDATED].transform is not None
    assert rebuilt[MISDATED].transform.rows == 5
    kept = curated(store, MISDATED)
    expire(store, MISDATED)  # months later: no notice

    assert run_pending(store, contract, settings) == []
    assert plan_backfill(store, contract, MISDATED, MISDATED, load=False) == []
    assert curated(store, MISDATED) == kept
    assert not store.exists(withdrawal_key("pos", MISDATED))


def test_a_notice_that_cannot_be_read_keeps_the_day_and_says_which_notice(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """Only a notice read whole proves a withdrawal: a malformed one (a newer writer's
    version, a truncated write) deletes nothing, and the warning names its key and field."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    for pending in pending_partitions(store, contract, load=False):
        process_partition(store, contract, pending.dt, settings, load=False)
    expire(store, MISDATED)
    key = withdrawal_notice_key("pos", MISDATED)
    store.write_bytes(key, json.dumps({"dataset": "pos", "dt": "2026-02-11"}).encode())

    with capture_logs(level=logging.WARNING) as logs:
        assert pending_partitions(store, contract, load=False) == []

    assert curated(store, MISDATED) != []
    (warned,) = [r for r in logs if "kept" in r["event"]]
    assert key in warned["event"]
    assert "landing_key" in warned["event"]


@pytest.mark.parametrize("stalled_at", [1, 2], ids=["before-manifest", "before-parts"])
def test_a_withdrawal_stalled_past_its_lease_leaves_the_day_a_later_holder_rebuilt(
    store: ObjectStore,
    settings: PipelineSettings,
    retail: Any,
    monkeypatch: pytest.MonkeyPatch,
    stalled_at: int,
) -> None:
    """The withdrawer checks its lease, then stalls past its expiry (before deleting the
    manifest, or before deleting the parts); another worker takes the lease over, finds a
    new delivery of the day and publishes it. The stalled withdrawer's removals must not
    take that partition (its manifest, its parts) with them."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    process_partition(store, contract, MISDATED, settings, load=False)
    move(store, retail)
    marker = "_state/data_pipeline/loads/pos/dt=2026-02-11.json"
    checks = 0

    with partition_lease(store, "pos", MISDATED, purpose="run", ttl_seconds=30) as lease:
        checked = lease.check

        def stall_after_check() -> int:
            nonlocal checks
            token = checked()
            checks += 1
            if checks != stalled_at:
                return token
            lease.release()  # expired meanwhile: the next holder gets a newer token
            other = {"late.csv": retail.rows("2026-02-11", 7).encode()}
            publish_delivery(store, "pos", MISDATED, other, landing="landing/pos/late.csv", rows=7)
            rebuilt = process_partition(store, contract, MISDATED, settings, load=False)
            assert rebuilt.transform is not None
            return token

        monkeypatch.setattr(lease, "check", stall_after_check)
        with pytest.raises(LeaseLostError):
            withdraw_partition(
                store, contract, MISDATED, load=False, lease=lease, marker_key=marker
            )

    manifest = read_manifest(store, "pos", MISDATED)
    assert manifest is not None
    assert manifest.rows == 7
    assert all(store.exists(key) for key in manifest.files)
    assert not store.exists(withdrawal_key("pos", MISDATED))


def test_a_withdrawal_meeting_a_lease_whose_tokens_restarted_says_so_and_how_to_recover(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """The day was built twice (its manifest records lease token 2), then the lease's
    object was lost (its tokens restart at 1): the withdrawal is refused as a publish is,
    explained the same way, with the recovery that finishes it."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    for _ in range(2):
        process_partition(store, contract, MISDATED, settings, load=False)
    built = read_manifest(store, "pos", MISDATED)
    assert built is not None
    assert built.lease_token == 2
    move(store, retail)
    store.delete(lease_key("pos", MISDATED))  # the lease object is lost

    with pytest.raises(PublishFencedError) as caught:
        process_partition(store, contract, MISDATED, settings, load=False)

    refused = caught.value
    said = str(refused)
    assert isinstance(refused, LeaseLostError)
    assert (refused.token, refused.newer, refused.generation) == (1, 2, built.generation)
    assert refused.withdrawal
    assert pickle.loads(pickle.dumps(refused)).withdrawal
    assert said.startswith(
        "dataset 'pos', partition dt=2026-02-11: the curated manifest was published under "
        f"lease token 2 of {lease_key('pos', MISDATED)}; this withdrawal's token 1 is older, "
        "yet its lease is still held at token 1: no holder has token 2, the lease's tokens "
        "restarted"
    ), said
    assert "nothing withdrawn" in said
    assert said.endswith(
        f"delete {refused.manifest} only if it still names generation {built.generation} "
        "(lease token 2; one naming another generation was published since: keep it), "
        "then run `etl-data-pipeline run --no-load --dataset pos`"  # it ran without loads
    ), said
    assert read_manifest(store, "pos", MISDATED) == built  # left as it was
    assert not store.exists(withdrawal_key("pos", MISDATED))

    store.delete(manifest_key("pos", MISDATED))  # the operator's recovery, as the error says
    ran = {outcome.dt: outcome for outcome in run_pending(store, contract, settings)}
    assert ran[MISDATED].withdrawn  # the parts left removed, the withdrawal recorded
    assert ran[RIGHT].transform is not None  # the day its delivery moved to, built
    assert read_manifest(store, "pos", MISDATED) is None


def test_a_transform_only_withdrawal_refused_by_a_restarted_lease_is_finished_by_its_recovery(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """Without loads (a store-only deployment, ``transform --date``, ``run --no-load``): the
    refusal's recovery is a run that needs no database, and once the operator deleted the
    manifest it withdraws the day: its curated parts removed, the withdrawal recorded (was
    ``run --dataset pos``, which a store-only deployment refuses for want of a database,
    and the day, with neither manifest nor load marker, was no longer pending: its parts
    stayed for good, the withdrawal never recorded)."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    for _ in range(2):
        process_partition(store, contract, MISDATED, settings, load=False)
    move(store, retail)
    store.delete(lease_key("pos", MISDATED))  # the lease object is lost

    with pytest.raises(PublishFencedError) as caught:
        process_partition(store, contract, MISDATED, settings, load=False)

    said = str(caught.value)
    assert said.endswith("then run `etl-data-pipeline run --no-load --dataset pos`"), said
    assert pickle.loads(pickle.dumps(caught.value)).rerun == (
        "etl-data-pipeline run --no-load --dataset pos"
    )
    store.delete(manifest_key("pos", MISDATED))  # the operator's recovery, as it says
    ran = {outcome.dt: outcome for outcome in run_pending(store, contract, settings)}

    assert ran[MISDATED].withdrawn
    assert curated(store, MISDATED) == []
    assert store.exists(withdrawal_key("pos", MISDATED))
    assert run_pending(store, contract, settings) == []  # settled


def test_a_day_whose_only_delivery_moves_while_it_is_rebuilt_is_withdrawn_by_the_retry(
    local_store: ObjectStore,
    settings: PipelineSettings,
    retail: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rebuild lists the day's delivery, the file lane moves it before it is read: the
    attempt fails retryably naming the key (not the store's ObjectNotFoundError), and the
    retry lists again, finds the day withdrawn and withdraws it."""
    from data_pipeline import transform

    contract = load_contracts(settings.config_dir).get("pos")
    deliver(local_store, retail, MISDATED)
    process_partition(local_store, contract, MISDATED, settings, load=False)
    deliver(local_store, retail, MISDATED)  # delivered again: the day is rebuilt
    listed = transform.input_objects

    def list_then_moved(store: ObjectStore, dataset: str, dt: date) -> list[ObjectInfo]:
        found = listed(store, dataset, dt)
        move(store, retail)
        return found

    monkeypatch.setattr(transform, "input_objects", list_then_moved)
    with pytest.raises(InputGoneError) as caught:
        process_partition(local_store, contract, MISDATED, settings, load=False)
    monkeypatch.undo()

    assert caught.value.key == validated_key("pos", MISDATED, NAME)
    assert RetryPolicy().is_retryable(caught.value)
    retried = process_partition(local_store, contract, MISDATED, settings, load=False)
    assert retried.withdrawn
    assert read_manifest(local_store, "pos", MISDATED) is None
    assert local_store.exists(withdrawal_key("pos", MISDATED))


class _UnlistableStore(LocalObjectStore):
    """A local store whose listings of validated/ fail (a permission, a transient S3 error)
    once ``failing`` is set."""

    failing = False

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if self.failing and prefix.startswith("validated/"):
            raise StorageError(f"listing {prefix} denied", key=prefix, url=self.url)
        return super().list(prefix)


def test_a_validated_listing_that_fails_never_reads_as_no_delivery(
    tmp_path: Path, settings: PipelineSettings, retail: Any
) -> None:
    store = _UnlistableStore(tmp_path / "unlistable")
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    process_partition(store, contract, MISDATED, settings, load=False)
    built = curated(store, MISDATED)

    store.failing = True
    with pytest.raises(StorageError, match="denied"):
        pending_partitions(store, contract, load=False)
    with pytest.raises(StorageError, match="denied"):
        process_partition(store, contract, MISDATED, settings, load=False)
    with pytest.raises(StorageError, match="denied"):
        plan_backfill(store, contract, MISDATED, MISDATED)

    assert curated(store, MISDATED) == built
    assert not store.exists(withdrawal_key("pos", MISDATED))


def test_a_withdrawal_removes_the_parts_of_a_generation_dated_ahead_by_its_host_clock(
    store: ObjectStore, settings: PipelineSettings, tmp_path: Path
) -> None:
    contract = load_contracts(settings.config_dir).get("pos")
    ahead = datetime.now(UTC) + timedelta(hours=1)  # the building host's clock runs ahead
    part = tmp_path / "part.parquet"
    part.write_bytes(b"PAR1")
    published = publish_partition(
        store,
        dataset="pos",
        dt=MISDATED,
        generation=new_generation(ahead),
        started_at=ahead,
        files=[part],
        rows=1,
        inputs={},
    )
    assert set(curated(store, MISDATED)) == {*published.files, manifest_key("pos", MISDATED)}

    with partition_lease(store, "pos", MISDATED, purpose="run", ttl_seconds=30) as lease:
        withdraw_partition(store, contract, MISDATED, load=False, lease=lease, marker_key="m.json")

    assert curated(store, MISDATED) == []


ROWS_OF_MISDATED = "SELECT count(*) FROM retail_sales_transaction WHERE dt = '2026-02-11'"


def _sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run ``statement`` on the database of ``url`` (PostgreSQL or SQLite), committed."""
    if url.startswith("sqlite:///"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as lite:
            rows = lite.execute(statement).fetchall()
            lite.commit()
            return rows
    with psycopg.connect(url) as connection:
        cursor = connection.execute(statement)
        return cursor.fetchall() if cursor.description else []


@pytest.mark.parametrize(
    "database_kind", [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]
)
def test_a_refused_withdrawals_recovery_pasted_into_a_shell_finishes_it(
    database_kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    config_dir: Path,
    retail: Any,
) -> None:
    """As an operator: a loading run's withdrawal refused because the day's lease object
    was lost; its recovery pasted into bash as printed (the store under a path with a
    space, quotes, ``$``, a backtick and a non-ASCII letter), then the statement the
    run's row deletion prints (the database kept the day's newer load fence): the day's
    curated output and rows are gone, the withdrawal recorded."""
    fixture = "database" if database_kind == "postgresql" else "migrated_sqlite"
    url = request.getfixturevalue(fixture)
    root = tmp_path / "the lake's ü" / "st$re `x`"
    root.mkdir(parents=True)
    env = {"DATABASE_URL": url, "ETL_STORAGE_URL": str(root), "ETL_CONFIG_DIR": str(config_dir)}
    shell_env = {**os.environ, **env, "ETL_LOG_FORMAT": "json"}
    shell_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"

    def shell(line: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", line], env=shell_env, cwd=tmp_path, capture_output=True, text=True
        )

    def errors(said: str) -> list[str]:
        found = [json.loads(line) for line in said.splitlines() if line.startswith("{")]
        return [entry["event"] for entry in found if entry["level"] == "error"]

    with open_store(str(root)) as store:
        retail.seed(store, ["2026-11-01"])
        deliver(store, retail, MISDATED)
        for step in ("run", f"transform --dataset pos --date {MISDATED}", "run"):
            built = shell(f"etl-data-pipeline {step}")  # built twice, loaded at token 3
            assert built.returncode == 0, built.stderr
        assert _sql(url, ROWS_OF_MISDATED) == [(30,)]
        move(store, retail)
        store.delete(lease_key("pos", MISDATED))  # the lease object is lost
        refused = shell("etl-data-pipeline run")
        assert refused.returncode == 1, refused.stderr
        (said,) = errors(refused.stderr)
        found = re.search(r"run it again: delete (.+) only if it still names generation .*"
                          r"then run `([^`]+)`$", said)  # fmt: skip
        assert found is not None, said
        manifest, rerun = found.groups()
        assert rerun == "etl-data-pipeline run --dataset pos"

        assert shell(f"rm {manifest}").returncode == 0  # pasted as printed
        assert not store.exists(manifest_key("pos", MISDATED))
        ran = shell(rerun)
        if ran.returncode:  # the database's fence of the lost lease's token 3 refuses token 2
            (fenced,) = errors(ran.stderr)
            statement = fenced[fenced.index("DELETE FROM etl_load_fence") :]
            _sql(url, statement)
            ran = shell(rerun)
        assert ran.returncode == 0, ran.stderr
        assert "1 withdrawn" in ran.stdout, ran.stdout

        assert curated(store, MISDATED) == []
        assert store.exists(withdrawal_key("pos", MISDATED))
    assert _sql(url, ROWS_OF_MISDATED) == [(0,)]


def notices(store: ObjectStore) -> list[str]:
    return [info.key for info in store.list("_state/file_processing/withdrawals/")]


def test_a_withdrawal_removes_the_notice_it_consumed_and_records_it(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """Notices accumulated for ever (every run listed and judged each one again); the
    withdrawal that acted on one removes it, keeping what it said in its own record."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    run_pending(store, contract, settings)
    move(store, retail)

    ran = {outcome.dt: outcome for outcome in run_pending(store, contract, settings)}

    assert ran[MISDATED].withdrawn
    assert notices(store) == []
    record = json.loads(store.read_bytes(withdrawal_key("pos", MISDATED)))
    assert record["notice"]["landing_key"] == LANDING
    assert record["notice"]["data_keys"] == [validated_key("pos", MISDATED, NAME)]
    assert run_pending(store, contract, settings) == []


def test_a_run_killed_after_recording_a_withdrawal_removes_its_notice_next_run(
    pipeline: Cli, local_store: ObjectStore, retail: Any
) -> None:
    deliver(local_store, retail, MISDATED)
    assert pipeline("run", "--no-load").returncode == 0
    move(local_store, retail)

    killed = pipeline("run", "--no-load", env={FAULT_ENV: Step.WITHDRAWN.value})

    assert killed.returncode == -9, killed.stderr
    assert local_store.exists(withdrawal_key("pos", MISDATED))
    assert notices(local_store) == [withdrawal_notice_key("pos", MISDATED)]
    again = pipeline("run", "--no-load")  # the day the delivery moved to: built now
    assert again.returncode == 0, again.stderr
    assert "1 partition(s) processed, 0 failed" in again.stdout, again.stdout
    assert "2026-02-11" not in again.stdout
    assert notices(local_store) == []
    assert curated(local_store, MISDATED) == []


@pytest.mark.postgres
def test_a_notice_stays_while_the_rows_of_a_transform_only_withdrawal_are_loaded(
    pipeline: Cli, database: str, local_store: ObjectStore, retail: Any
) -> None:
    """``run --no-load`` withdraws the curated output only: the loaded rows stay until a
    run that loads, which acts on the notice; it is removed then, not before."""
    env = {"DATABASE_URL": database}
    deliver(local_store, retail, MISDATED)
    assert pipeline("run", env=env).returncode == 0
    move(local_store, retail)

    curated_only = pipeline("run", "--no-load", env=env)

    assert curated_only.returncode == 0, curated_only.stderr
    assert curated(local_store, MISDATED) == []
    assert notices(local_store) == [withdrawal_notice_key("pos", MISDATED)]
    assert days(database)["2026-02-11"] == 30
    loading = pipeline("run", env=env)
    assert loading.returncode == 0, loading.stderr
    assert "2026-02-11" not in days(database)
    assert notices(local_store) == []


def test_the_notice_of_a_day_rebuilt_without_its_delivery_is_removed(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """The day keeps another delivery: rebuilt from it, the notice no longer applies to
    anything built (nor to any later build), so the run that rebuilt it removes it; a day
    never built whose delivery moved away has nothing to withdraw: its notice is removed
    too."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    other = {"other.csv": retail.rows("2026-02-11", 5).encode()}
    publish_delivery(store, "pos", MISDATED, other, landing="landing/pos/other.csv", rows=5)
    run_pending(store, contract, settings)
    move(store, retail)
    never_built = date(2026, 2, 12)
    notice_withdrawal(store, "pos", never_built, landing="landing/pos/elsewhere.csv")

    rebuilt = {o.dt: o for o in run_pending(store, contract, settings)}

    assert rebuilt[MISDATED].transform is not None
    assert notices(store) == []  # judged spent right after the build, under its lease
    assert run_pending(store, contract, settings) == []
    expire(store, MISDATED)  # months later, a lifecycle rule: no withdrawal
    assert run_pending(store, contract, settings) == []
    assert curated(store, MISDATED) != []


def test_a_notice_is_not_removed_while_another_writer_holds_its_day(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """A build holding the day's lease may have read the delivery before it moved and
    publish it after: the notice stays until the day is free and judged again."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    notice_withdrawal(store, "pos", MISDATED, landing=LANDING)

    with partition_lease(store, "pos", MISDATED, purpose="transform", ttl_seconds=60):
        assert retire_spent_notices(store, contract, lease_seconds=60) == 0
        assert notices(store) == [withdrawal_notice_key("pos", MISDATED)]

    assert retire_spent_notices(store, contract, lease_seconds=60) == 1
    assert notices(store) == []


def test_a_notice_rewritten_by_another_move_after_it_was_judged_spent_stays(
    store: ObjectStore, settings: PipelineSettings, retail: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notice judged spent (an earlier move's, of a delivery the day was built without) is
    removed only as the version judged: the file lane moving the day's delivery off it
    right after the judgement rewrites the notice, which stays, and the day is withdrawn
    (deleted, the build would keep the moved rows: counted twice)."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    run_pending(store, contract, settings)
    gone = validated_key("pos", MISDATED, "gone.csv")
    notice_withdrawal(store, "pos", MISDATED, landing="landing/pos/gone.csv", data_keys=[gone])
    judged, moved = withdraw.notice_spent, []

    def then_moved(*args: Any, **kwargs: Any) -> Any:
        spent = judged(*args, **kwargs)
        if spent is not None and not moved:  # between the judgement and the delete
            move(store, retail)
            moved.append(True)
        return spent

    monkeypatch.setattr(withdraw, "notice_spent", then_moved)

    assert retire_spent_notices(store, contract, lease_seconds=60) == 0

    monkeypatch.undo()
    assert moved
    assert notices(store) == [withdrawal_notice_key("pos", MISDATED)]
    ran = {outcome.dt: outcome for outcome in run_pending(store, contract, settings)}
    assert ran[MISDATED].withdrawn
    assert curated(store, MISDATED) == []


def test_a_day_rebuilt_from_a_new_delivery_under_a_key_a_failed_void_left_noticed_is_kept(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """The key moved off the day and back, and the file lane's void of the day's notice
    failed (a store error: it warned, delete by hand): the notice still names the key's
    data key. The vendor's new delivery under the key published that data key again (other
    bytes, another ETag) and the day was rebuilt from it: a build of a new delivery, not of
    the withdrawn one. A later run keeps it (and removes the spent notice), even once a
    lifecycle rule expires the day's validated partition. On the local store and on S3."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    run_pending(store, contract, settings)
    data = validated_key("pos", MISDATED, NAME)
    withdrawn = store.head(data).etag
    notice_move(store, retail)  # moved off (its notice names the object withdrawn), then
    redelivered = {NAME: retail.rows(RIGHT.isoformat(), 31).encode()}  # back, void failed
    publish_delivery(store, "pos", MISDATED, redelivered, landing=LANDING, rows=31)
    assert store.head(data).etag != withdrawn
    assert notices(store) == [withdrawal_notice_key("pos", MISDATED)]

    (rebuilt,) = [o for o in run_pending(store, contract, settings) if o.dt == MISDATED]
    assert rebuilt.transform is not None
    assert not rebuilt.withdrawn
    manifest = read_manifest(store, "pos", MISDATED)
    assert manifest is not None
    assert manifest.inputs[data] != withdrawn
    expire(store, MISDATED)  # months later, a lifecycle rule

    assert [o.dt for o in run_pending(store, contract, settings)] == []
    assert curated(store, MISDATED) != []
    assert read_manifest(store, "pos", MISDATED) == manifest
    assert notices(store) == []  # spent: nothing built of the day read what it withdrew


def test_a_notice_naming_the_object_a_build_read_withdraws_it_and_an_older_notice_by_key(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """A notice recording the ETag of the object it withdrew withdraws the build that read
    that object; a notice of an older file lane (data keys, no ETags) withdraws any build
    that read one of its keys, whatever the object, as it always did."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    data = validated_key("pos", MISDATED, NAME)
    deliver(store, retail, MISDATED)
    run_pending(store, contract, settings)
    move(store, retail)  # its notice names the very object the build read
    ran = {o.dt: o for o in run_pending(store, contract, settings)}
    assert ran[MISDATED].withdrawn
    assert curated(store, MISDATED) == []

    other = {NAME: retail.rows(RIGHT.isoformat(), 31).encode()}
    publish_delivery(store, "pos", MISDATED, other, landing=LANDING, rows=31)
    run_pending(store, contract, settings)
    notice_withdrawal(store, "pos", MISDATED, landing=LANDING, data_keys=[data])  # older lane
    expire(store, MISDATED)
    ran = {o.dt: o for o in run_pending(store, contract, settings)}
    assert ran[MISDATED].withdrawn
    assert curated(store, MISDATED) == []


def test_a_build_of_an_earlier_file_the_moved_key_published_under_a_data_key_is_withdrawn(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """The day was built from the key's first file; the vendor then sent a corrected file
    under the same key (same day, same data key, other bytes: another ETag) and, before the
    next run, the key moved off the day (a date-format fix). The notice records the ETag of
    the object it withdrew, the corrected file's: the build read the first file, also of
    the withdrawn delivery, and is withdrawn (its rows would otherwise be counted on both
    days for good, the notice removed as spent). On the local store and on S3."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    run_pending(store, contract, settings)
    data = validated_key("pos", MISDATED, NAME)
    built = read_manifest(store, "pos", MISDATED)
    assert built is not None
    corrected = {NAME: retail.rows(RIGHT.isoformat(), 31).encode()}
    publish_delivery(store, "pos", MISDATED, corrected, landing=LANDING, rows=31)
    assert store.head(data).etag != built.inputs[data]
    move(store, retail)  # before the next run: its notice names the corrected file's ETag

    ran = {o.dt: o for o in run_pending(store, contract, settings)}
    assert ran[MISDATED].withdrawn
    assert curated(store, MISDATED) == []
    assert notices(store) == []


def drop_first_member(store: ObjectStore, retail: Any) -> tuple[str, str]:
    """A corrected file under the same landing key renames its member on the same day, as
    the file lane publishes it: the new member and manifest, the day's notice naming the
    dropped member with its ETag (the day still has the delivery), the dropped member
    removed. Returns the dropped data key and the new one."""
    renamed = "pos_20261103_v2.csv"
    publish_delivery(
        store, "pos", MISDATED, {renamed: retail.rows(RIGHT.isoformat(), 31).encode()},
        landing=LANDING, rows=31,
    )  # fmt: skip
    first = validated_key("pos", MISDATED, NAME)
    notice_withdrawal(
        store, "pos", MISDATED, landing=LANDING, moved_to=[validated_prefix("pos", MISDATED)],
        data_keys=[first], at=datetime.now(UTC), emptied=False,
        data_etags={first: store.head(first).etag},
    )  # fmt: skip
    store.delete(first)
    store.delete(quality_report_key(first))
    return first, validated_key("pos", MISDATED, renamed)


def test_a_build_of_an_earlier_version_with_other_members_of_the_moved_key_is_withdrawn(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """Built from the key's first version; a corrected archive renamed its member on the
    same day, then the key moved off the day before the next run: the build read a member
    of the withdrawn delivery that the move's own data keys do not name; the day's notice
    (the renamed-away member, merged into the move's) withdraws it."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    run_pending(store, contract, settings)
    first, renamed = drop_first_member(store, retail)
    noticed = read_withdrawal_notice(store, "pos", MISDATED)
    assert noticed is not None
    etag = noticed.data_etags[first]
    deliver(store, retail, RIGHT)
    # the move's notice, merged with the day's (the member renamed away keeps its ETag)
    notice_withdrawal(
        store, "pos", MISDATED, landing=LANDING, moved_to=[validated_prefix("pos", RIGHT)],
        data_keys=[first, renamed], at=datetime.now(UTC), emptied=True,
        data_etags={first: etag, renamed: store.head(renamed).etag},
    )  # fmt: skip
    store.delete(delivery_manifest_key("pos", MISDATED, LANDING))
    store.delete(renamed)
    store.delete(quality_report_key(renamed))

    ran = {o.dt: o for o in run_pending(store, contract, settings)}
    assert ran[MISDATED].withdrawn
    assert curated(store, MISDATED) == []
    assert notices(store) == []


def test_the_notice_of_a_member_renamed_away_is_removed_once_the_day_is_rebuilt(
    store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    """No move follows: the day is rebuilt from the corrected version, which does not read
    the member renamed away; its notice is spent, and a lifecycle rule later withdraws
    nothing."""
    retail.seed(store, [])
    contract = load_contracts(settings.config_dir).get("pos")
    deliver(store, retail, MISDATED)
    run_pending(store, contract, settings)
    drop_first_member(store, retail)

    ran = {o.dt: o for o in run_pending(store, contract, settings)}
    assert ran[MISDATED].transform is not None
    assert not ran[MISDATED].withdrawn
    assert notices(store) == []
    expire(store, MISDATED)
    assert run_pending(store, contract, settings) == []
    assert curated(store, MISDATED) != []
