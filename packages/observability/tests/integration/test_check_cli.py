"""`etl-observability check` run as an operator (or cron, or CI) would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from etl_core.layout import landing_key
from etl_core.storage import open_store
from etl_core.testing.deliveries import publish_delivery
from etl_core.testing.fixtures import REFUSED_LOGIN_PASSWORD
from etl_core.testing.s3 import aws_test_environment

Cli = Callable[..., subprocess.CompletedProcess[str]]
Migrate = Callable[[str], None]

AGED = """
dataset = "{name}"
source = "{name}"
pattern = "{name}_{{date:%Y%m%d}}.csv"
[[columns]]
name = "id"
[freshness]
warn_after = "1h"
critical_after = "3h"
"""
SCHEDULED = AGED + 'expected = "30 5 * * *"\ngrace = "1h"\n'


def configure(tmp_path: Path, **contracts: str) -> list[str]:
    """Contracts by dataset name, and the global options pointing at them and a store."""
    datasets = tmp_path / "config" / "datasets"
    datasets.mkdir(parents=True, exist_ok=True)
    for name, text in contracts.items():
        (datasets / f"{name}.toml").write_text(text.format(name=name))
    (tmp_path / "lake").mkdir(exist_ok=True)
    return ["--config-dir", str(tmp_path / "config"), "--storage", str(tmp_path / "lake")]


def drop(tmp_path: Path, source: str, day: datetime, at: datetime) -> None:
    key = landing_key(source, f"{source}_{day:%Y%m%d}.csv")
    with open_store(str(tmp_path / "lake")) as store:
        store.write_bytes(key, b"id\n1\n")
    os.utime(tmp_path / "lake" / key, (at.timestamp(), at.timestamp()))


def deliver_on_time(tmp_path: Path, source: str, now: datetime) -> None:
    """The last nine days' files of a 05:30 UTC feed, each stored at its due time, the
    newest validated (else nothing would have reached validated for days: critical)."""
    for back in reversed(range(9)):
        due = (now - timedelta(days=back)).replace(hour=5, minute=30, second=0, microsecond=0)
        if due <= now:
            drop(tmp_path, source, due, due)
            newest = due
    with open_store(str(tmp_path / "lake")) as store:
        landing = landing_key(source, f"{source}_{newest:%Y%m%d}.csv")
        publish_delivery(store, source, newest.date(), {"part.csv": b"x"}, landing=landing)


def test_fresh_datasets_exit_0_and_json_says_why(cli: Cli, tmp_path: Path) -> None:
    options = configure(tmp_path, sales=AGED, pos=SCHEDULED)
    now = datetime.now(UTC)
    drop(tmp_path, "sales", now, now - timedelta(minutes=10))
    deliver_on_time(tmp_path, "pos", now)  # today's too once due; before, nothing is said of it

    result = cli(*options, "check", "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    levels = {s["dataset"]: s["level"] for s in report["datasets"]}
    assert levels["sales"] == "ok"
    assert levels["pos"] == "ok"  # an unknown zone (no curated data asked for) does not outweigh
    sales = next(s for s in report["datasets"] if s["dataset"] == "sales")
    landing = next(r for r in sales["results"] if r["subject"] == "landing")
    assert landing["threshold"] == "warn 1h, critical 3h"
    assert landing["observed"].startswith("10m old")
    arrivals = [r for s in report["datasets"] for r in s["results"] if r["monitor"] == "arrival"]
    assert {r["state"] for r in arrivals} == {"on_time"}
    assert len(arrivals) >= 7


def test_a_stale_dataset_exits_1_with_a_table_naming_it(cli: Cli, tmp_path: Path) -> None:
    options = configure(tmp_path, sales=AGED, stock=AGED)
    now = datetime.now(UTC)
    drop(tmp_path, "sales", now, now - timedelta(minutes=5))
    drop(tmp_path, "stock", now, now - timedelta(hours=4))

    result = cli(*options, "check")

    assert result.returncode == 1, result.stderr
    rows = [" ".join(line.replace("│", " ").split()) for line in result.stdout.splitlines()]
    assert any(line.startswith("stock age landing critical stale") for line in rows)
    assert "past critical after 3h" in result.stdout
    assert "2 datasets: 1 ok, 1 critical" in " ".join(result.stdout.split())


def test_nothing_judged_exits_3_not_0(cli: Cli, tmp_path: Path) -> None:
    """A source matching no file and no schedule: every verdict unknown; cron must not
    read that as green."""
    options = configure(tmp_path, ghost=AGED)

    result = cli(*options, "check")

    assert result.returncode == 3, result.stdout + result.stderr
    assert "nothing could be judged (exit 3)" in " ".join(result.stdout.split())
    assert json.loads(cli(*options, "check", "--json").stdout)["level"] == "unknown"


def test_some_unknown_verdicts_beside_an_ok_one_still_exit_0(cli: Cli, tmp_path: Path) -> None:
    options = configure(tmp_path, sales=AGED, ghost=AGED)
    now = datetime.now(UTC)
    drop(tmp_path, "sales", now, now - timedelta(minutes=5))

    result = cli(*options, "check")

    assert result.returncode == 0, result.stdout + result.stderr


def test_a_grace_longer_than_the_schedules_period_exits_2_naming_file_and_key(
    cli: Cli, tmp_path: Path
) -> None:
    options = configure(tmp_path, pos=AGED + 'expected = "30 5 * * *"\ngrace = "25h"\n')

    result = cli(*options, "check")

    assert result.returncode == 2, result.stdout + result.stderr
    assert "freshness.grace: expected at most the shortest time" in result.stderr
    assert "pos.toml:11: key freshness.grace" in result.stderr


def test_dataset_option_checks_only_that_dataset(cli: Cli, tmp_path: Path) -> None:
    options = configure(tmp_path, sales=AGED, stock=AGED)
    now = datetime.now(UTC)
    drop(tmp_path, "sales", now, now)
    drop(tmp_path, "stock", now, now - timedelta(hours=4))

    result = cli(*options, "check", "--dataset", "sales", "--json")

    assert result.returncode == 0, result.stderr
    assert [s["dataset"] for s in json.loads(result.stdout)["datasets"]] == ["sales"]


def test_an_unknown_dataset_is_a_configuration_error(cli: Cli, tmp_path: Path) -> None:
    options = configure(tmp_path, sales=AGED)
    result = cli(*options, "check", "--dataset", "sails")
    assert result.returncode == 2
    assert "no contract for dataset 'sails' (contracts: sales)" in result.stderr


def test_a_cron_the_engine_refuses_exits_2_naming_file_line_and_field(
    cli: Cli, tmp_path: Path
) -> None:
    options = configure(tmp_path, pos=AGED + 'expected = "0 6 * * MON-FRY"\n')

    checked = cli(*options, "check")
    linted = cli(*options, "contracts", "check", "--json")

    assert checked.returncode == 2
    assert "freshness.expected" in checked.stderr
    assert "Bad day-of-week" in checked.stderr
    assert linted.returncode == 2
    (error,) = json.loads(linted.stdout)["errors"]
    assert (error["field"], error["line"]) == ("freshness.expected", 10)
    assert error["file"].endswith("pos.toml")


def test_metrics_file_has_levels_ages_and_arrivals(cli: Cli, tmp_path: Path) -> None:
    options = configure(tmp_path, pos=SCHEDULED)
    now = datetime.now(UTC)
    deliver_on_time(tmp_path, "pos", now)
    metrics = tmp_path / "check.prom"

    result = cli(*options, "check", "--metrics-file", str(metrics))

    assert result.returncode in (0, 1), result.stderr
    text = metrics.read_text()
    assert 'etl_observability_dataset_level{dataset="pos"}' in text
    assert 'etl_observability_freshness_age_seconds{dataset="pos",zone="landing"}' in text
    yesterday = (now - timedelta(days=1)).date().isoformat()
    assert (
        f'etl_observability_arrival_state{{dataset="pos",dt="{yesterday}",state="on_time"}} 1'
        in text
    )
    assert "etl_observability_evaluation_timestamp_seconds " in text
    assert 'etl_observability_freshness_level{dataset="pos",zone="landing"}' in text
    assert 'etl_observability_arrivals{dataset="pos",state="on_time"}' in text


def test_a_metrics_file_in_a_folder_that_does_not_exist_exits_2_naming_it(
    cli: Cli, tmp_path: Path
) -> None:
    options = configure(tmp_path, pos=SCHEDULED)
    deliver_on_time(tmp_path, "pos", datetime.now(UTC))
    target = tmp_path / "node_exportr" / "check.prom"  # a misspelt collector folder

    result = cli(*options, "check", "--metrics-file", str(target))

    assert result.returncode == 2, result.stderr  # a bad argument, not late data (1)
    assert f"metrics file {target} cannot be written: No such file or directory" in (result.stderr)
    assert "Traceback" not in result.stderr
    assert not target.parent.exists()


def _printed(code: str, cwd: Path) -> list[str]:
    """The lines ``code`` prints, run in a fresh interpreter (Django set up there only)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ETL_DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.splitlines()


def _freshness_history(url: str, cwd: Path, dataset: str) -> list[str]:
    code = textwrap.dedent(
        f"""
        import etl_database_schema as schema
        schema.connect({url!r})
        with schema.models(schema.LEDGER_APP) as m:
            rows = m["FreshnessStatus"].objects.filter(dataset={dataset!r}).order_by("id")
            for row in rows:
                print(row.level, row.latest_partition, row.message[:60])
        run = m["PipelineRun"].objects.filter(job="check").order_by("-id").first()
        print("run", run.status, run.inputs_count)
        """
    )
    return _printed(code, cwd)


def _levels_are_recorded_on_change(cli: Cli, tmp_path: Path, url: str) -> None:
    options = configure(tmp_path, stock=AGED)
    now = datetime.now(UTC)
    drop(tmp_path, "stock", now, now - timedelta(hours=2))

    first = cli(*options, "--database-url", url, "check")
    again = cli(*options, "--database-url", url, "check")
    drop(tmp_path, "stock", now, now)
    fresh = cli(*options, "--database-url", url, "check")

    assert (first.returncode, again.returncode, fresh.returncode) == (1, 1, 0), first.stderr
    history = _freshness_history(url, tmp_path, "stock")
    assert [line.split()[0] for line in history[:-1]] == ["warning", "ok"]
    assert history[0].split()[1] == now.date().isoformat()
    assert "age landing: the newest landing object is 2h" in history[0]
    assert history[-1] == "run succeeded 1"  # the check ran fine; its verdict is the exit code


def test_levels_go_into_the_sqlite_freshness_history_when_they_change(
    cli: Cli, tmp_path: Path, migrate: Migrate
) -> None:
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    migrate(url)
    _levels_are_recorded_on_change(cli, tmp_path, url)


@pytest.mark.postgres
def test_levels_go_into_the_postgres_freshness_history_when_they_change(
    cli: Cli, tmp_path: Path, migrate: Migrate, postgres_url: str
) -> None:
    migrate(postgres_url)
    _levels_are_recorded_on_change(cli, tmp_path, postgres_url)


def _histories_by_store(url: str, cwd: Path, dataset: str) -> list[str]:
    code = textwrap.dedent(
        f"""
        import etl_database_schema as schema
        schema.connect({url!r})
        with schema.models(schema.LEDGER_APP) as m:
            rows = m["FreshnessStatus"].objects.filter(dataset={dataset!r}).order_by("id")
            for row in rows:
                print(row.store.rsplit("/", 2)[-2], row.level)
        """
    )
    return _printed(code, cwd)


def test_two_deployments_sharing_a_database_keep_their_freshness_histories_apart(
    cli: Cli, tmp_path: Path, migrate: Migrate
) -> None:
    """Production's stock is fresh, staging's (another lake, the same dataset name) is
    late: each check records its own level once, not a change each time the other ran."""
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    migrate(url)
    now = datetime.now(UTC)
    options = {}
    for deployment, age in (("prod", timedelta(minutes=5)), ("staging", timedelta(hours=2))):
        options[deployment] = configure(tmp_path / deployment, stock=AGED)
        drop(tmp_path / deployment, "stock", now, now - age)

    checks = [
        cli(*options[deployment], "--database-url", url, "check")
        for deployment in ("prod", "staging", "prod", "staging")
    ]

    assert [check.returncode for check in checks] == [0, 1, 0, 1]
    assert _histories_by_store(url, tmp_path, "stock") == ["prod ok", "staging warning"]
    # the shared database is said (once per process), naming the other store, from the
    # second deployment's first check on; the first found only its own rows
    said = [
        [line for line in check.stderr.splitlines() if "other object store" in line]
        for check in checks
    ]
    assert [len(lines) for lines in said] == [0, 1, 1, 1], checks[1].stderr
    other = {"prod": "staging", "staging": "prod"}
    for deployment, lines in zip(("staging", "prod", "staging"), said[1:], strict=True):
        assert (tmp_path / other[deployment] / "lake").as_uri() in lines[0]
        assert "docs/architecture.md section 5" in lines[0]


def test_an_unmigrated_database_stops_the_check_with_exit_2(cli: Cli, tmp_path: Path) -> None:
    options = configure(tmp_path, sales=AGED)
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    result = cli(*options, "--database-url", url, "check")
    assert result.returncode == 2
    assert "etl-schema migrate" in result.stderr


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("wrong", "named"),
    [("database", 'database "etl_no_such_database"'), ("role", 'role "etl_no_such_role"')],
)
def test_a_database_url_the_server_refuses_stops_the_check_with_exit_2_naming_the_flag(
    cli: Cli, tmp_path: Path, refused_login_urls: dict[str, str], wrong: str, named: str
) -> None:
    options = configure(tmp_path, sales=AGED)
    result = cli(*options, "--database-url", refused_login_urls[wrong], "check")
    assert result.returncode == 2, result.stderr  # not 1, which means late data
    said = " ".join(json.loads(line)["event"] for line in result.stderr.splitlines())
    assert "--database-url" in said
    assert named in said
    assert "correct the" in said
    assert REFUSED_LOGIN_PASSWORD not in result.stdout + result.stderr
    assert str(urlsplit(refused_login_urls[wrong]).password) not in result.stdout + result.stderr


@pytest.mark.s3
def test_check_reads_an_s3_store_as_it_reads_a_local_one(
    cli: Cli, tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    options = configure(tmp_path, pos=SCHEDULED)
    url = f"s3://{s3_bucket}/check-test"
    now = datetime.now(UTC)
    today = now.replace(hour=5, minute=30, second=0, microsecond=0)
    with aws_test_environment():
        with open_store(url, endpoint_url=s3_endpoint) as store:
            store.write_bytes(landing_key("pos", f"pos_{today:%Y%m%d}.csv"), b"id\n1\n")
            store.write_bytes(landing_key("pos", "notes.txt"), b"not a delivery")
        aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    env = {**aws, "ETL_S3_ENDPOINT_URL": s3_endpoint}

    result = cli(*options, "--storage", url, "check", "--json", env=env)

    assert result.returncode in (0, 1), result.stderr
    (pos,) = json.loads(result.stdout)["datasets"]
    landing = next(r for r in pos["results"] if r["subject"] == "landing")
    assert landing["level"] == "ok"
    assert landing["detail"]["key"] == f"landing/pos/pos_{today:%Y%m%d}.csv"
    assert landing["value"] < 120
    arrival = {r["subject"]: r["state"] for r in pos["results"] if r["monitor"] == "arrival"}
    grace = timedelta(hours=1)  # the file arrived now; today's is due at 05:30 UTC
    expected = "early" if now < today - grace else "on_time" if now <= today + grace else "late"
    assert arrival[today.date().isoformat()] == expected
