"""``etl-file-processing process | scan | quarantine`` as an operator runs them."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent / "etl-file-processing"
Orders = Callable[..., bytes]


def cli(
    lane: Any, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    store = lane.store.url
    command = [str(BIN), "--storage", store, "--config-dir", str(lane.config_dir)]
    environ = {**os.environ, "ETL_LOG_FORMAT": "json", "ETL_WORK_DIR": str(lane.tmp), **(env or {})}
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=environ, timeout=120, check=False
    )


@pytest.fixture
def local(local_lane: Any) -> Any:
    return local_lane


def test_process_json_says_validated_and_exits_0(local: Any, orders: Orders) -> None:
    key = local.deliver("orders_20261101.csv", orders(5))
    done = cli(local, "process", key, "--json")
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["status"] == "validated"
    assert outcome["dataset"] == "orders"
    assert outcome["source"] == "vendor"
    assert outcome["outputs"][0] == "validated/orders/dt=2026-11-01/orders_20261101.csv"
    assert {c["name"] for c in outcome["checks"]} >= {"unique:id", "range:amount"}
    logs = [json.loads(line) for line in done.stderr.splitlines()]
    assert any(line.get("key") == key and line.get("dataset") == "orders" for line in logs)


def test_process_of_a_quarantined_file_exits_3_with_its_reason(local: Any) -> None:
    key = local.deliver("orders_20261102.csv", b"id;amount\n1;2\n")
    done = cli(local, "process", key, "--json")
    assert done.returncode == 3
    outcome = json.loads(done.stdout)
    assert outcome["status"] == "quarantined"
    assert outcome["reason"]["code"] == "data.schema"


@pytest.mark.parametrize("name", ["orders_20261102.csv.tar", "orders_20261102.csv.tar.gz"])
def test_process_of_a_tar_of_no_entries_quarantines_it_as_an_empty_archive(
    local: Any, name: str
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if name.endswith(".gz") else "w"):
        pass
    key = local.deliver(name, buffer.getvalue())

    done = cli(local, "process", key, "--json")

    assert done.returncode == 3, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["status"] == "quarantined"
    assert (outcome["key"], outcome["reason"]["code"]) == (key, "archive.empty")


@pytest.mark.parametrize("form", ["path", "url"])
def test_process_takes_a_local_object_by_the_path_or_url_a_message_named_it_by(
    local: Any, orders: Orders, form: str
) -> None:
    key = local.deliver("orders_20261103.csv", orders(3))
    where = local.store.location_for(key) if form == "path" else local.store.url_for(key)

    done = cli(local, "process", where, "--json")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["key"] == key


def test_process_of_a_path_outside_the_store_exits_2_naming_the_store(
    local: Any, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "orders_20261103.csv"

    done = cli(local, "process", str(outside))

    assert done.returncode == 2
    assert f"{outside} is not inside the store {local.store.root}" in done.stderr


def test_process_reads_a_relative_path_with_a_dot_segment_from_the_working_directory(
    local: Any, orders: Orders
) -> None:
    key = local.deliver("orders_20261103.csv", orders(3))
    here = local.store.root / "landing" / "vendor"  # an operator in the delivery's folder
    command = [str(BIN), "--storage", local.store.url, "--config-dir", str(local.config_dir)]
    environ = {**os.environ, "ETL_LOG_FORMAT": "json", "ETL_WORK_DIR": str(local.tmp)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args],
            capture_output=True,
            text=True,
            env=environ,
            cwd=here,
            timeout=120,
            check=False,
        )

    done = run("process", "./orders_20261103.csv", "--json")
    outside = run("process", "../../../elsewhere.csv")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["key"] == key
    assert outside.returncode == 2
    assert "../../../elsewhere.csv is not inside the store" in outside.stderr


def test_process_of_a_missing_key_exits_2_naming_it(local: Any) -> None:
    done = cli(local, "process", "landing/vendor/nothing.csv")
    assert done.returncode == 2
    assert "nothing.csv" in done.stderr


def test_invalid_contract_is_refused_at_start_up_naming_file_and_field(local: Any) -> None:
    (local.config_dir / "datasets" / "broken.toml").write_text(
        'dataset = "broken"\nsource = "b"\npattern = "x_{date:%Y%m%d}.csv"\npacking = "rar"\n'
        '[[columns]]\nname = "id"\n'
    )
    done = cli(local, "scan")
    assert done.returncode == 2
    assert "broken.toml" in done.stderr
    message = "packing: expected one of 'none', 'zip', 'gzip', 'tar', 'auto', got 'rar'"
    assert message in done.stderr
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert message in " ".join(readme.split()), "the README quotes the refusal otherwise"


def test_two_scans_at_once_process_each_object_exactly_once(local: Any, orders: Orders) -> None:
    keys = [local.deliver(f"orders_202611{day:02d}.csv", orders(50 + day)) for day in range(1, 13)]
    environ = {**os.environ, "ETL_LOG_FORMAT": "json", "ETL_WORK_DIR": str(local.tmp)}
    command = [
        str(BIN), "--storage", local.store.url, "--config-dir", str(local.config_dir),
        "scan", "--json", "--concurrency", "3",
    ]  # fmt: skip
    runs = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ, text=True
        )
        for _ in range(2)
    ]
    results = [run.communicate(timeout=180) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [r[1][-2000:] for r in results]
    validated = Counter(
        o["key"]
        for stdout, _ in results
        for o in json.loads(stdout)["outcomes"]
        if o["status"] == "validated"
    )
    assert sorted(validated) == sorted(keys)
    assert set(validated.values()) == {1}
    data = [k for k in local.keys("validated/") if k.endswith(".csv")]
    assert len(data) == len(keys)


def test_scan_summary_counts_outcomes_and_exits_3_when_something_was_quarantined(
    local: Any, orders: Orders
) -> None:
    local.deliver("orders_20261101.csv", orders(5))
    local.deliver("orders_20261101.csv.copy", orders(5))
    local.deliver("stray.txt", b"hello", source="unknown")
    done = cli(local, "scan", "--json", "--concurrency", "1")
    assert done.returncode == 3, done.stderr
    summary = json.loads(done.stdout)
    assert summary["counts"] == {
        "validated": 1,
        "quarantined": 1,
        "skipped": 1,
        "settling": 0,
        "failed": 0,
    }
    assert summary["by_reason"] == {"contract.unmatched": 1, "duplicate": 1}
    again = cli(local, "scan", "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["counts"]["skipped"] == 3


def test_quarantine_list_show_release_round_trip(local: Any, orders: Orders) -> None:
    key = local.deliver("orders_20261103.csv", orders(10, bad_amounts=6))
    assert cli(local, "scan").returncode == 3
    listed = json.loads(cli(local, "quarantine", "list", "--json").stdout)
    assert [r["source_key"] for r in listed] == [key]
    shown = cli(local, "quarantine", "show", listed[0]["key"])
    assert json.loads(shown.stdout)["reason"] == "data.quality"
    released = cli(local, "quarantine", "release", listed[0]["key"], "--by", "bob")
    assert released.returncode == 0, released.stderr
    assert "will be processed by the next scan" in released.stdout
    assert json.loads(cli(local, "quarantine", "list", "--json").stdout) == []
    twice = cli(local, "quarantine", "release", listed[0]["key"])
    assert twice.returncode == 2
    assert "already released by bob" in twice.stderr
    rerun = json.loads(cli(local, "scan", "--json").stdout)
    assert rerun["counts"]["quarantined"] == 1


def test_quarantine_show_and_release_take_the_key_as_the_list_shows_it(
    local: Any, orders: Orders
) -> None:
    local.deliver("orders_20261103.csv", orders(10, bad_amounts=6))
    assert cli(local, "scan").returncode == 3
    table = cli(local, "quarantine", "list").stdout
    shown_key = "orders/dt=2026-11-03/orders_20261103.csv"  # the table's, without quarantine/
    assert shown_key in table
    assert "quarantine/" + shown_key not in table
    shown = cli(local, "quarantine", "show", shown_key)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["key"] == "quarantine/" + shown_key
    released = cli(local, "quarantine", "release", shown_key, "--by", "bob")
    assert released.returncode == 0, released.stderr
    assert f"released quarantine/{shown_key}" in released.stdout
    missing = cli(local, "quarantine", "show", "orders/dt=2026-11-03/nope.csv")
    assert missing.returncode == 2
    assert "no quarantine record for orders/dt=2026-11-03/nope.csv" in missing.stderr


def test_quarantine_show_takes_the_quarantined_object_by_its_local_path(
    local: Any, orders: Orders
) -> None:
    local.deliver("orders_20261103.csv", orders(10, bad_amounts=6))
    assert cli(local, "scan").returncode == 3
    listed = json.loads(cli(local, "quarantine", "list", "--json").stdout)
    path = local.store.location_for(listed[0]["key"])

    shown = cli(local, "quarantine", "show", path)

    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["reason"] == "data.quality"


def test_quarantine_show_finds_a_listed_key_of_a_dataset_named_quarantine(
    local: Any, orders: Orders
) -> None:
    """Listed keys are relative to quarantine/: the dataset "quarantine" lists its files as
    quarantine/dt=.../name, which is not a quarantine key itself."""
    contract = (local.config_dir / "datasets" / "orders.toml").read_text()
    (local.config_dir / "datasets" / "orders.toml").write_text(
        contract.replace('dataset = "orders"', 'dataset = "quarantine"')
    )
    local.deliver("orders_20261103.csv", orders(10, bad_amounts=6))
    assert cli(local, "scan").returncode == 3
    shown_key = "quarantine/dt=2026-11-03/orders_20261103.csv"  # as the list shows it
    assert shown_key in cli(local, "quarantine", "list").stdout
    shown = cli(local, "quarantine", "show", shown_key)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["key"] == "quarantine/" + shown_key
    full = cli(local, "quarantine", "show", "quarantine/" + shown_key)
    assert json.loads(full.stdout)["key"] == "quarantine/" + shown_key


def test_quarantine_show_and_release_read_records_under_quarantine_only(
    local: Any, orders: Orders
) -> None:
    """A delivery named like a record (landing/.../x.csv.quarantine.json) is not one: given
    a landing key, show and release found it and took it for the record of x.csv."""
    local.deliver("orders_20261103.csv", orders(10, bad_amounts=6))
    assert cli(local, "scan").returncode == 3
    record = local.store.read_bytes(
        "quarantine/orders/dt=2026-11-03/orders_20261103.csv.quarantine.json"
    )
    forged = local.deliver("orders_20261104.csv.quarantine.json", record)
    landing_key = forged.removesuffix(".quarantine.json")
    shown = cli(local, "quarantine", "show", landing_key)
    assert shown.returncode == 2, shown.stdout
    assert f"no quarantine record for {landing_key}" in shown.stderr
    released = cli(local, "quarantine", "release", landing_key, "--by", "eve")
    assert released.returncode == 2, released.stdout
    assert local.store.read_bytes(forged) == record  # the delivery is left as it came


def test_scan_of_an_unknown_dataset_exits_2(local: Any) -> None:
    done = cli(local, "scan", "--dataset", "nope")
    assert done.returncode == 2
    assert "unknown dataset 'nope'" in done.stderr


def test_quarantine_list_of_a_dataset_no_contract_declares_exits_2_naming_the_closest(
    local: Any, orders: Orders
) -> None:
    """`quarantine list --dataset ordres` said "0 quarantined file(s)", exit 0: a typo
    read as "nothing refused", while `orders` had a quarantined file."""
    local.deliver("orders_20261103.csv", orders(10, bad_amounts=6))
    assert cli(local, "scan").returncode == 3
    datasets = Path(local.config_dir) / "datasets"
    os.utime(datasets, (time.time() - 60, time.time() - 60))  # settled, not being deployed

    typo = cli(local, "quarantine", "list", "--dataset", "ordres")
    declared = cli(local, "quarantine", "list", "--dataset", "orders", "--json")

    assert typo.returncode == 2, typo.stderr
    assert "ordres" in typo.stderr
    assert "did you mean 'orders'?" in typo.stderr
    assert declared.returncode == 0, declared.stderr
    assert len(json.loads(declared.stdout)) == 1


def test_quarantine_list_of_a_dataset_no_key_can_hold_exits_2_without_a_traceback(
    local: Any,
) -> None:
    """`--dataset ../x` was a bug's traceback ("unexpected error: ValueError"), exit 1."""
    done = cli(local, "quarantine", "list", "--dataset", "../x")

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "--dataset" in done.stderr


def test_debug_logs_never_show_the_private_key(
    local: Any, orders: Orders, pgp: Any, tmp_path: Path
) -> None:
    plain = tmp_path / "orders.csv"
    plain.write_bytes(orders(5))
    sealed = pgp.encrypt(plain, tmp_path / "orders_20261104.csv.pgp")
    key = local.deliver(sealed.name, sealed)
    armoured = pgp.recipient_secret_armored.decode()
    done = cli(
        local,
        "--log-level",
        "DEBUG",
        "process",
        key,
        "--json",
        env={"TEST_ORDERS_KEY": armoured},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "validated"
    body = [line for line in armoured.splitlines()[2:] if len(line) > 20]
    assert body
    assert not any(line in done.stderr for line in body)


def test_names_with_brackets_are_printed_as_they_are(local: Any) -> None:
    local.deliver("notes [draft].txt", b"hello", source="misc")
    done = cli(local, "scan")
    assert done.returncode == 3, done.stderr
    assert "misc/notes [draft].txt" in done.stdout


def test_process_exits_1_when_the_engine_runs_out_of_memory_and_blames_no_file(
    local: Any,
) -> None:
    names = [f"c{i}" for i in range(400)]
    columns = "".join(f'[[columns]]\nname = "{n}"\n' for n in names)
    (local.config_dir / "datasets" / "wide.toml").write_text(
        f'dataset = "wide"\nsource = "wide"\npattern = "wide_{{date:%Y%m%d}}.csv"\n{columns}'
    )
    body = (",".join(names) + "\n" + ",".join("x" for _ in names) + "\n").encode()
    key = local.deliver("wide_20261206.csv", body, source="wide")
    starved = {"ETL_QUALITY_MEMORY_LIMIT": "8MiB", "ETL_QUALITY_THREADS": "1"}
    done = cli(local, "process", key, "--json", env=starved)
    assert done.returncode == 1, done.stderr
    assert "quality_memory_limit" in done.stderr
    assert local.keys("quarantine/") == []
    assert cli(local, "process", key, "--json").returncode == 0


def test_quality_top_values_zero_leaves_the_sketch_out_and_the_report_says_so(
    local: Any, orders: Orders
) -> None:
    key = local.deliver("orders_20261103.csv", orders(5))
    done = cli(local, "process", key, "--json", env={"ETL_QUALITY_TOP_VALUES": "0"})
    assert done.returncode == 0, done.stderr
    report_key = json.loads(done.stdout)["outputs"][0] + ".quality.json"
    report = json.loads(local.store.read_bytes(report_key))
    assert report["profile_omitted"] == ["top_values"]
    assert all(column["top_values"] == [] for column in report["profile"])


def test_a_negative_quality_top_values_is_refused_naming_the_setting(
    local: Any, orders: Orders
) -> None:
    key = local.deliver("orders_20261104.csv", orders(5))
    done = cli(local, "process", key, env={"ETL_QUALITY_TOP_VALUES": "-1"})
    assert done.returncode == 2, done.stderr
    assert "quality_top_values" in done.stderr
    assert local.keys("validated/") == []


def unprivileged() -> list[str]:
    """A command prefix under which file modes bind: nothing for a user, and for root
    ``setpriv`` without the capabilities that override them (root reads a 0o000 file)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux): file modes would not bind")
    caps = "-dac_override,-dac_read_search,-fowner"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", "--"]


def test_scan_with_an_unreadable_landing_object_fails_it_alone_and_processes_the_rest(
    local: Any, orders: Orders
) -> None:
    """Listing a local store read every file for its MD5: one vendor file delivered with
    mode 0600 by another user stopped the whole scan before any object was processed."""
    hidden = local.deliver("orders_20261101.csv", orders(5))
    local.deliver("orders_20261102.csv", orders(6))
    path = Path(local.store.url.removeprefix("file://"), *hidden.split("/"))
    path.chmod(0)
    try:
        command = [str(BIN), "--storage", local.store.url, "--config-dir", str(local.config_dir)]
        environ = {**os.environ, "ETL_LOG_FORMAT": "json", "ETL_WORK_DIR": str(local.tmp)}
        done = subprocess.run([*unprivileged(), *command, "scan", "--json"], env=environ,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    finally:
        path.chmod(0o644)
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert summary["counts"] == {
        "validated": 1,
        "quarantined": 0,
        "skipped": 0,
        "settling": 0,
        "failed": 1,
    }
    assert f"cannot read '{hidden}'" in done.stderr
    assert "Permission denied" in done.stderr
    assert local.keys("validated/orders/dt=2026-11-02/")
    assert path.read_bytes() == orders(5)  # the vendor's file is kept
    again = cli(local, "scan", "--json")  # readable again: the next scan does it
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["counts"]["validated"] == 1, again.stdout


def test_scan_with_a_missing_work_dir_exits_2_before_any_object_is_tried(
    local: Any, orders: Orders
) -> None:
    """Each object failed alike with WorkDirError, a ledger record each, and scan exit 1."""
    local.deliver("orders_20261101.csv", orders(5))
    local.deliver("orders_20261102.csv", orders(6))
    missing = local.tmp / "no-such-work"
    done = cli(local, "scan", "--json", env={"ETL_WORK_DIR": str(missing)})
    assert done.returncode == 2, done.stderr
    said = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    errors = [line["event"] for line in said if line["level"] == "error"]
    assert len(errors) == 1, errors  # said once, not once per object
    assert f"work directory {missing}" in errors[0]
    assert "(from env ETL_WORK_DIR)" in errors[0]
    assert not any(line["level"] == "critical" for line in said), done.stderr
    assert local.keys("_state/file_processing/objects/") == []  # no failed record each
    assert local.keys("validated/") == []


def test_scan_counts_an_earlier_quarantine_a_good_redelivery_closed(
    local: Any, orders: Orders
) -> None:
    """The count the README quotes after a scan's summary line."""
    local.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    assert cli(local, "scan").returncode == 3
    local.deliver("orders_20261102.csv", orders(10))  # the vendor's good re-delivery

    done = cli(local, "scan")

    assert done.returncode == 0, done.stderr
    said = "; 1 earlier quarantine(s) closed as superseded"
    assert done.stdout.rstrip().endswith(said), done.stdout
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"`…{said}`" in " ".join(readme.split())
    assert json.loads(cli(local, "scan", "--json").stdout)["superseded"] == 0  # done before


def test_process_prints_a_closed_quarantine_with_brackets_in_its_name_as_it_is(
    local: Any, orders: Orders
) -> None:
    key = local.deliver("orders_20261102.csv [red]", orders(10, bad_amounts=6))
    refused = cli(local, "process", key)
    assert refused.returncode == 3, refused.stderr
    assert "landing/vendor/orders_20261102.csv [red]" in refused.stdout  # the table's title
    contract = local.config_dir / "datasets" / "orders.toml"
    contract.write_text(contract.read_text().replace("max = 1000", "max = 10000"))  # fixed
    forced = cli(local, "process", key, "--force")
    assert forced.returncode == 0, forced.stderr
    line = "quarantine/orders/dt=2026-11-02/orders_20261102.csv [red] closed as revalidated"
    assert line in " ".join(forced.stdout.split()), forced.stdout


def test_a_release_by_a_name_the_lane_closes_records_with_is_refused(
    local: Any, orders: Orders
) -> None:
    local.deliver("orders_20261103.csv", orders(10, bad_amounts=6))
    assert cli(local, "scan").returncode == 3
    (listed,) = json.loads(cli(local, "quarantine", "list", "--json").stdout)
    for name in ("revalidated", "superseded", "Superseded", " REVALIDATED ", "superseded\t"):
        refused = cli(local, "quarantine", "release", listed["key"], "--by", name)
        assert refused.returncode == 2, refused.stdout
        events = [json.loads(line)["event"] for line in refused.stderr.splitlines()]
        assert any(f"--by {name!r}" in event for event in events), refused.stderr
    assert json.loads(cli(local, "quarantine", "list", "--json").stdout) == [listed]
