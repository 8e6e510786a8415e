"""``etl-data-pipeline ingest`` as an operator runs it: exit codes, JSON, status, dry run,
secrets kept out of logs, and SIGKILL mid-run at several points then a resume that lands
exactly the server's records."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_pipeline.ingest import ObjectStateStore, lease_key
from etl_core.storage import acquire_lease
from etl_core.testing.brokers import broker_for
from etl_core.testing.scripts import run_script

from .conftest import SECRETS, Fault, cursor_items, stamp

SOURCE = """
[auth]
type = "bearer"
token = "env:SHOP_TOKEN"

[[endpoints]]
name = "items"
path = "/offset"
dataset = "shop_items"
records_path = "items"
chunk_records = {chunk}
[endpoints.pagination]
type = "offset"
page_size = 5
"""


def cli(workspace, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_script(
        "etl-data-pipeline",
        "--storage",
        f"file://{workspace.store_dir}",
        "--config-dir",
        str(workspace.config),
        *args,
        cwd=workspace.root,
        env={"SHOP_TOKEN": SECRETS["token"], **(env or {})},
    )


def popen(workspace, *args: str) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    environ.update({"ETL_LOG_FORMAT": "json", "SHOP_TOKEN": SECRETS["token"]})
    script = Path(sys.executable).parent / "etl-data-pipeline"
    command = [str(script), "--storage", f"file://{workspace.store_dir}"]
    command += ["--config-dir", str(workspace.config), *args]
    return subprocess.Popen(
        command,
        cwd=workspace.root,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def bearer_api(api):
    api.auth = "bearer"
    return api


def test_ingest_prints_json_and_exits_0(workspace, bearer_api) -> None:
    workspace.source(SOURCE.format(chunk=10), endpoints=("items",))

    result = cli(workspace, "ingest", "--json")

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    [window] = document["windows"]
    assert window["records"] == len(bearer_api.records)
    assert document["failures"] == []
    assert workspace.landed("items") == bearer_api.records


def test_endpoints_of_a_source_are_ingested_side_by_side(workspace, bearer_api) -> None:
    second = SOURCE.format(chunk=10).split("[[endpoints]]")[1].replace('"items"', '"others"', 1)
    second = second.replace('dataset = "shop_items"', 'dataset = "shop_others"')
    body = SOURCE.format(chunk=10) + "[[endpoints]]" + second
    workspace.source(body, endpoints=("items", "others"))
    bearer_api.delay = 0.05  # each endpoint one request at a time (concurrency 1)

    result = cli(workspace, "ingest", "--json")

    assert result.returncode == 0, result.stderr
    assert workspace.landed("items") == workspace.landed("others") == bearer_api.records
    assert bearer_api.max_in_flight == 2


def test_status_shows_cursor_success_and_failures(workspace, bearer_api) -> None:
    workspace.source(SOURCE.format(chunk=10), endpoints=("items",))
    cli(workspace, "ingest")
    bearer_api.faults.append(Fault("/offset", 404))

    failed = cli(workspace, "ingest", "--json")
    status = cli(workspace, "ingest", "status", "--json")

    assert failed.returncode == 1
    assert "HTTP 404" in failed.stderr
    [row] = json.loads(status.stdout)
    assert row["endpoint"] == "items"
    assert row["consecutive_failures"] == 1
    assert "404" in row["last_error"]
    assert row["last_success_at"]
    assert row["records_total"] == len(bearer_api.records)


def test_dry_run_requests_and_writes_nothing(workspace, bearer_api) -> None:
    workspace.source(SOURCE.format(chunk=10), endpoints=("items",))

    result = cli(workspace, "ingest", "--dry-run", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["windows"][0]["unit"] == "shop/items/incremental"
    assert bearer_api.requests == []
    assert workspace.keys("") == []


def test_a_bad_source_file_exits_2_naming_file_line_and_field(workspace, bearer_api) -> None:
    workspace.source(SOURCE.format(chunk=10).replace("page_size = 5", "page_size = 0"))
    workspace.source(SOURCE.format(chunk=10), endpoints=("items",))
    path = workspace.config / "sources" / "shop.toml"
    path.write_text(path.read_text().replace("page_size = 5", "page_sise = 5"))

    result = cli(workspace, "ingest")
    check = cli(workspace, "contracts", "check")

    assert result.returncode == 2
    assert "page_sise" in result.stderr
    assert check.returncode == 2
    assert f"{path}:" in check.stdout
    assert "endpoints[0].pagination.page_sise" in check.stdout


def test_a_max_retry_wait_of_zero_exits_2_naming_file_and_key_before_any_request(
    workspace, bearer_api
) -> None:
    workspace.source('max_retry_wait = "0s"\n' + SOURCE.format(chunk=10), endpoints=("items",))
    path = workspace.config / "sources" / "shop.toml"

    result = cli(workspace, "ingest")

    assert result.returncode == 2
    assert f"{path}:" in result.stderr
    assert "max_retry_wait" in result.stderr
    assert "1s or more" in result.stderr
    assert bearer_api.requests == []


def test_a_mistyped_has_more_path_without_page_size_exits_1_naming_it(
    workspace, bearer_api
) -> None:
    body = SOURCE.format(chunk=10).replace('path = "/offset"', 'path = "/hasmore"')
    body = body.replace('records_path = "items"', 'records_path = "data"')
    paged = 'type = "page_number"\nhas_more_path = "more"'
    body = body.replace('type = "offset"\npage_size = 5', paged)
    workspace.source(body, endpoints=("items",))

    result = cli(workspace, "ingest")

    assert result.returncode == 1  # not 0 after one page of records
    assert "has_more_path 'more'" in result.stderr


def test_contracts_check_lists_valid_sources(workspace, bearer_api) -> None:
    workspace.source(SOURCE.format(chunk=10), endpoints=("items",))

    result = cli(workspace, "contracts", "check")

    assert result.returncode == 0, result.stdout
    assert "1 API source valid: shop" in result.stdout


def test_secrets_never_reach_the_logs(workspace, bearer_api) -> None:
    workspace.source(SOURCE.format(chunk=10), endpoints=("items",))
    bearer_api.faults.append(Fault("/offset", 503, {"Retry-After": "0"}))

    result = cli(workspace, "--log-level", "DEBUG", "ingest")

    assert result.returncode == 0, result.stderr
    assert "retrying" in result.stderr
    assert SECRETS["token"] not in result.stderr + result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_chunks", [0, 1, 4, 9])
def test_sigkill_mid_run_then_resume_lands_exactly_the_servers_records(
    workspace, bearer_api, kill_after_chunks
) -> None:
    bearer_api.records = [bearer_api.record(i) for i in range(1, 121)]
    bearer_api.delay = 0.02
    workspace.source(SOURCE.format(chunk=7), endpoints=("items",))
    landing = workspace.store_dir / "landing"

    process = popen(workspace, "ingest")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        chunks = list(landing.rglob("*.jsonl.gz")) if landing.exists() else []
        if len(chunks) >= kill_after_chunks and (kill_after_chunks or bearer_api.requests):
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL

    resumed = cli(workspace, "ingest", "--json")

    assert resumed.returncode == 0, resumed.stderr
    landed = workspace.landed("items")
    assert sorted(r["id"] for r in landed) == [r["id"] for r in bearer_api.records]
    assert landed == bearer_api.records


@pytest.mark.slow
def test_sigterm_stops_at_a_page_boundary_exits_143_and_resumes(workspace, bearer_api) -> None:
    bearer_api.records = [bearer_api.record(i) for i in range(1, 121)]
    bearer_api.delay = 0.02
    workspace.source(SOURCE.format(chunk=7), endpoints=("items",))
    landing = workspace.store_dir / "landing"

    process = popen(workspace, "ingest")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if landing.exists() and len(list(landing.rglob("*.jsonl.gz"))) >= 2:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)

    assert process.returncode == 143
    status = json.loads(cli(workspace, "ingest", "status", "--json").stdout)
    assert status[0]["window"] is not None
    assert status[0]["consecutive_failures"] == 0
    resumed = cli(workspace, "ingest")
    assert resumed.returncode == 0, resumed.stderr
    assert workspace.landed("items") == bearer_api.records


def test_with_a_database_the_state_lives_in_its_api_ingestion_table(
    workspace, bearer_api, migrated_sqlite
) -> None:
    workspace.source("max_attempts = 2\n" + SOURCE.format(chunk=10), endpoints=("items",))
    env = {"DATABASE_URL": migrated_sqlite}

    first = cli(workspace, "ingest", "--json", env=env)
    bearer_api.faults += [Fault("/offset", 500) for _ in range(2)]
    failed = cli(workspace, "ingest", env=env)
    status = cli(workspace, "ingest", "status", "--json", env=env)

    assert first.returncode == 0, first.stderr
    assert failed.returncode == 1
    [row] = json.loads(status.stdout)
    assert row["state"] == "database"
    assert row["records_total"] == len(bearer_api.records)
    assert row["consecutive_failures"] == 1
    assert "HTTP 500" in row["last_error"]
    assert workspace.keys("_state/") == [
        k for k in workspace.keys("_state/") if k.endswith(".lease.json")
    ]


def test_an_endpoint_held_by_another_run_is_skipped_with_a_warning(workspace, bearer_api) -> None:
    workspace.source(SOURCE.format(chunk=10), endpoints=("items",))
    key = lease_key("shop", "items")

    with acquire_lease(workspace.store, key, ttl=60, purpose="ingest by a colleague"):
        result = cli(workspace, "ingest", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["busy"] == ["shop/items/incremental"]
    assert "ingest by a colleague" in result.stderr
    assert bearer_api.requests == []


WINDOWED = (
    SOURCE.format(chunk=10)
    + """[endpoints.incremental]
cursor_field = "updated_at"
param = "since"
end_param = "until"
window = "15m"
"""
)


@pytest.mark.slow
def test_a_bounded_window_waits_for_a_live_holder_and_sigterm_ends_the_wait_at_once(
    workspace, bearer_api
) -> None:
    # issue 15: a window of a range (a backfill's) is nobody else's work: it waits while the
    # holder is alive (not skipped), and an interruption during that wait ends the run at
    # once as any interrupted run (143), not after lease_seconds
    workspace.source(WINDOWED, endpoints=("items",))
    key = lease_key("shop", "items")
    window = ["--since", "2026-03-01T00:00:00Z", "--until", "2026-03-01T00:15:00Z"]

    with acquire_lease(workspace.store, key, ttl=60, purpose="ingest by a colleague"):
        process = popen(workspace, "ingest", *window)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert process.poll() is None, process.communicate()[1][-3000:]  # still waiting
        process.send_signal(signal.SIGTERM)
        interrupted = time.monotonic()
        _, stderr = process.communicate(timeout=60)
        stopped_in = time.monotonic() - interrupted

    assert process.returncode == 143, stderr[-3000:]
    assert stopped_in < 5, stopped_in
    assert bearer_api.requests == []
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_a_bounded_window_still_busy_after_its_wait_fails_the_run(workspace, bearer_api) -> None:
    # a window of a range that waited out lease_seconds behind a live holder was listed as
    # busy and the run exited 0: the backfill "succeeded" with that window never fetched
    # (the holder runs its own window, not this one); it is a failure, as a backfill's
    # partition still busy after its wait is, so the range is run again
    workspace.source(WINDOWED, endpoints=("items",))
    key = lease_key("shop", "items")
    window = ["--since", "2026-03-01T00:00:00Z", "--until", "2026-03-01T00:15:00Z"]

    with acquire_lease(workspace.store, key, ttl=60, purpose="ingest by a colleague"):
        result = cli(workspace, "ingest", "--json", *window, env={"ETL_LEASE_SECONDS": "2"})

    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert document["busy"] == []
    (failure,) = document["failures"]
    assert failure["unit"].startswith("shop/items/")
    assert "ingest by a colleague" in failure["error"]
    assert "gave up after waiting 2 s" in failure["error"]
    assert bearer_api.requests == []


def test_a_secret_that_does_not_resolve_exits_2_naming_the_reference(workspace, bearer_api) -> None:
    workspace.source(SOURCE.format(chunk=10), endpoints=("items",))

    result = cli(workspace, "ingest", env={"SHOP_TOKEN": ""})

    assert result.returncode == 2, result.stderr
    assert "env:SHOP_TOKEN" in result.stderr
    assert bearer_api.requests == []


def test_a_missing_secret_is_refused_before_any_window_opens_naming_file_and_key(
    workspace, bearer_api
) -> None:
    workspace.source(SOURCE.format(chunk=10), endpoints=("items",))
    path = workspace.config / "sources" / "shop.toml"

    result = cli(workspace, "ingest", env={"SHOP_TOKEN": ""})

    assert result.returncode == 2, result.stderr
    assert "auth.token" in result.stderr
    assert str(path) in result.stderr
    assert "SHOP_TOKEN is set but empty" in result.stderr
    assert "Traceback" not in result.stderr
    assert workspace.keys("") == []  # no window committed, nothing to resume


def _unused_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return int(unused.getsockname()[1])


@pytest.mark.parametrize("no_wait", [False, True], ids=["wait", "no-wait"])
def test_an_unreachable_broker_fails_at_once_naming_it_without_a_traceback(
    workspace, bearer_api, no_wait
) -> None:
    workspace.source(SOURCE.format(chunk=10), endpoints=("items",))
    broker = f"redis://:hunter2@127.0.0.1:{_unused_port()}/0"
    started = time.monotonic()

    result = cli(
        workspace,
        "ingest",
        "--executor",
        "celery",
        *(["--no-wait"] if no_wait else []),
        env={"ETL_BROKER_URL": broker, "ETL_LOG_FORMAT": "json"},
    )

    assert result.returncode == 1, result.stderr
    assert f"the broker redis://:***@127.0.0.1:{broker.rsplit(':', 1)[1][:-2]}" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 15
    assert workspace.keys("") == []


def test_a_broker_refusing_the_login_exits_2_naming_it(workspace, bearer_api) -> None:
    with broker_for("rabbitmq") as rabbit:
        wrong = rabbit.url.replace(":guest@", ":wrong-Secret@", 1)
    workspace.source(SOURCE.format(chunk=10), endpoints=("items",))

    result = cli(
        workspace,
        "ingest",
        "--executor",
        "celery",
        env={"ETL_BROKER_URL": wrong, "ETL_LOG_FORMAT": "json"},
    )

    assert result.returncode == 2, result.stderr
    assert "refused the login" in result.stderr
    assert "wrong-Secret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_worker_whose_broker_refuses_the_login_exits_2_naming_it(workspace) -> None:
    with broker_for("rabbitmq") as rabbit:
        wrong = rabbit.url.replace(":guest@", ":wrong-Secret@", 1)

    result = cli(workspace, "worker", env={"ETL_BROKER_URL": wrong, "ETL_LOG_FORMAT": "json"})

    assert result.returncode == 2, result.stderr
    assert "refused the login" in result.stderr
    assert "wrong-Secret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_worker_whose_broker_does_not_answer_exits_1_at_once_naming_broker_url(
    workspace,
) -> None:
    # issue 15: the failed start-up check was ignored; Celery said so ~20 s later, then
    # retried forever
    port = _unused_port()
    started = time.monotonic()

    result = cli(
        workspace,
        "worker",
        env={"ETL_BROKER_URL": f"redis://:hunter2@127.0.0.1:{port}/0", "ETL_LOG_FORMAT": "json"},
    )

    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started < 15
    assert f"the broker redis://:***@127.0.0.1:{port}/0 did not answer" in result.stderr
    assert "(check broker_url)" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_scheduler_whose_broker_refuses_the_login_exits_2_naming_it(
    workspace, bearer_api
) -> None:
    with broker_for("rabbitmq") as rabbit:
        wrong = rabbit.url.replace(":guest@", ":wrong-Secret@", 1)
    workspace.source(SOURCE.format(chunk=10), endpoints=("items",))
    env = {"ETL_BROKER_URL": wrong, "ETL_EXECUTOR": "celery", "ETL_LOG_FORMAT": "json"}

    result = cli(workspace, "schedule", "--max-ticks", "1", env=env)

    assert result.returncode == 2, result.stderr
    assert "refused the login" in result.stderr
    assert "wrong-Secret" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.postgres
def test_on_postgresql_a_window_failing_midway_resumes_from_the_table(
    workspace, bearer_api, postgres_url
) -> None:
    migrated = run_script(
        "etl-schema", "migrate", cwd=workspace.root, env={"DATABASE_URL": postgres_url}
    )
    assert migrated.returncode == 0, migrated.stderr
    workspace.source("max_attempts = 1\n" + SOURCE.format(chunk=10), endpoints=("items",))
    env = {"DATABASE_URL": postgres_url}
    bearer_api.faults.append(Fault("/offset", 500, after=4))  # pages 0-3 land (2 chunks)

    failed = cli(workspace, "ingest", env=env)
    import psycopg

    query = (
        "SELECT cursor, records_total, consecutive_failures, last_error, last_success_at "
        "FROM etl_api_ingestion_state WHERE source = 'shop' AND endpoint = 'items'"
    )
    with psycopg.connect(postgres_url) as connection:
        [(cursor, total, failures, error, success)] = connection.execute(query).fetchall()
    window = json.loads(cursor)["window"]
    assert failed.returncode == 1
    assert (total, failures, success) == (20, 1, None)
    assert "HTTP 500" in error
    assert (window["chunk"], window["records"]) == (2, 20)

    resumed = cli(workspace, "ingest", "--json", env=env)

    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["windows"][0]["resumed"] is True
    assert workspace.landed("items") == bearer_api.records
    with psycopg.connect(postgres_url) as connection:
        [(cursor, total, failures, error, success)] = connection.execute(query).fetchall()
    assert (total, failures, error) == (len(bearer_api.records), 0, "")
    assert success is not None
    assert json.loads(cursor)["window"] is None
    assert workspace.keys("_state/") == [
        k for k in workspace.keys("_state/") if k.endswith(".lease.json")
    ]


UNSORTED_CURSOR = """
[auth]
type = "bearer"
token = "env:SHOP_TOKEN"
""" + cursor_items("chunk_records = 10")


def test_a_page_it_cannot_read_keeps_the_window_open_so_the_pages_after_it_land(
    workspace, bearer_api
) -> None:
    bearer_api.records = bearer_api.records[:30][::-1]  # newest first: not sorted by the mark
    workspace.source(UNSORTED_CURSOR, endpoints=("items",))
    bearer_api.faults.append(Fault("/cursor", 200, body=b"<html>busy</html>", after=1))

    failed = cli(workspace, "ingest")

    assert failed.returncode == 1, failed.stderr
    assert "page 1 of" in failed.stderr
    assert "stays open" in failed.stderr
    assert "--endpoint items --full-refresh (with --since" in failed.stderr  # the way past it
    stopped = ObjectStateStore(workspace.store).load("shop", "items")
    assert stopped.cursor is None  # the mark did not move past the unread page
    assert stopped.window is not None
    assert stopped.window.raw_page == 1
    [letters] = [k for k in workspace.keys("raw/") if k.endswith("_dead_letters.jsonl")]
    [letter] = [json.loads(line) for line in workspace.store.read_bytes(letters).splitlines()]
    assert (letter["reason"], letter["page"], letter["position"]) == ("not_json", 1, None)

    resumed = cli(workspace, "ingest", "--json")

    assert resumed.returncode == 0, resumed.stderr
    [window] = json.loads(resumed.stdout)["windows"]
    assert (window["resumed"], window["dead_letters"]) == (True, 0)
    landed = workspace.landed("items")
    assert sorted(r["id"] for r in landed) == list(range(1, 31))  # each once
    assert ObjectStateStore(workspace.store).load("shop", "items").cursor == stamp(30)


def test_a_proxy_variable_httpx_cannot_use_is_exit_2_naming_it(workspace, bearer_api) -> None:
    """Not exit 1 with httpx's own error: a setting to fix, said before any request."""
    workspace.source(UNSORTED_CURSOR, endpoints=("items",))

    failed = cli(workspace, "ingest", env={"HTTPS_PROXY": "ftp://ops:hunter2@127.0.0.1:21"})

    assert failed.returncode == 2, failed.stderr
    assert "HTTPS_PROXY=ftp://…" in failed.stderr
    assert "hunter2" not in failed.stderr + failed.stdout
    assert not bearer_api.requests


def test_a_page_gone_past_unread_is_exit_3_and_said_by_the_summary_and_status(
    workspace, bearer_api
) -> None:
    """The window completes past one page it could not read: its records never landed, which
    the run's summary, its JSON and ``ingest status`` say apart from the items set aside."""
    workspace.source(SOURCE.format(chunk=10), endpoints=("items",))
    bearer_api.maintenance.add(("/offset", "offset", "10"))

    result = cli(workspace, "ingest", env={"COLUMNS": "400"})

    assert result.returncode == 3, result.stderr
    summary = " ".join(result.stdout.split())
    assert "1 dead letter(s) set aside" in summary
    assert "1 of them whole page(s) that could not be read: their records were not landed" in (
        summary
    )
    status = cli(workspace, "ingest", "status", "--json")
    [row] = json.loads(status.stdout)
    assert (row["last_run"]["dead_letters"], row["last_run"]["pages_unread"]) == (1, 1)
    assert len(workspace.landed("items")) == len(bearer_api.records) - 5
