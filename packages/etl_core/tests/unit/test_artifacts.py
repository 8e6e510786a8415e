"""The cross-lane documents: round trips, old documents, newer writers, malformed ones."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from etl_core.artifacts import (
    CheckSummary,
    CuratedManifest,
    Delivery,
    QualityReason,
    QualitySummary,
    QuarantineRecord,
    RowCounts,
    WithdrawalNotice,
    utc_timestamp,
)
from etl_core.errors import ArtifactError, EtlError

# Documents exactly as the lanes wrote them before schema_version was recorded.
OLD_MANIFEST = b"""{
 "dataset": "pos",
 "dt": "2026-11-01",
 "generation": "20261203T073224173206-696f40",
 "started_at": "2026-12-03T07:32:24.173206Z",
 "published_at": "2026-12-03T07:32:24.264142Z",
 "files": [
  "curated/pos/dt=2026-11-01/part-20261203T073224173206-696f40-00000.parquet"
 ],
 "rows": 300,
 "bytes": 7188,
 "inputs": {
  "validated/pos/dt=2026-11-01/pos_20261101.csv": "9281fffe182dfcf5a3bdee3e42f18c05"
 },
 "run_id": "20261203T073224Z-26b0b9"
}"""

OLD_RECORD = """{
  "key": "quarantine/pos/dt=2026-11-07/pos_20261107.csv",
  "dataset": "pos",
  "partition": "2026-11-07",
  "reason": "data.quality",
  "message": "range:quantity: 30 rows fail",
  "source_key": "landing/pos/pos_20261107.csv",
  "source_etag": "a8228746b3d56209bf00d028ff9c18e0",
  "source_size": 27638,
  "run_id": "20261203T073221Z-5d15eb",
  "quarantined_at": "2026-12-03T07:32:22+00:00",
  "member": "pos_20261107.csv",
  "failed_checks": [
    {
      "member": "pos_20261107.csv",
      "name": "range:quantity",
      "kind": "range",
      "severity": "error",
      "passed": false,
      "failed_count": 30,
      "column": "quantity",
      "detail": "",
      "samples": [
        {
          "line": 11,
          "values": {
            "quantity": "0",
            "café": "é"
          }
        }
      ]
    }
  ],
  "released_at": null,
  "released_by": null,
  "release_note": null,
  "history": []
}""".encode()

OLD_REPORT: dict[str, Any] = {
    "delivery": {
        "key": "landing/pos/pos_20261106.csv",
        "etag": "823c3ce1032bbaceca21474d9ae03ea3",
        "size": 27670,
        "run_id": "20261203T073221Z-5d15eb",
        "members": ["pos_20261106.csv"],
        "control": [],
    },
    "dataset": "pos",
    "file": "pos_20261106.csv",
    "outcome": "pass",
    "reason": None,
    "format": "csv",
    "encoding": "utf-8",
    "size_bytes": 27670,
    "rows": {"total": 300, "malformed": 0, "rejected": 1, "valid": 299},
    "checks": [
        {
            "name": "columns",
            "kind": "columns",
            "severity": "error",
            "passed": True,
            "failed_count": 0,
            "column": None,
            "detail": "",
            "samples": [],
        },
        {
            "name": "range:quantity",
            "kind": "range",
            "severity": "error",
            "passed": False,
            "failed_count": 1,
            "column": "quantity",
            "detail": "",
            "samples": [{"line": 7, "values": {"quantity": "0"}}],
        },
    ],
    "malformed": [],
    "encoding_errors": [],
    "encoding_error_count": 0,
    "profile": [{"name": "quantity", "type": "INTEGER", "null_fraction": 0.0}],
    "split": True,
    "reject_limit": "0.5%",
    "checksum": None,
    "engine": "duckdb 1.2",
    "duration_seconds": 0.08,
}


def report_bytes(**changes: Any) -> bytes:
    return json.dumps({**OLD_REPORT, **changes}).encode()


# ---------------------------------------------------------------- manifest


def test_an_old_manifest_without_schema_version_loads_as_version_1() -> None:
    manifest = CuratedManifest.from_json(OLD_MANIFEST)
    assert manifest.schema_version == 1
    assert manifest.files == (
        "curated/pos/dt=2026-11-01/part-20261203T073224173206-696f40-00000.parquet",
    )
    assert manifest.inputs == {
        "validated/pos/dt=2026-11-01/pos_20261101.csv": "9281fffe182dfcf5a3bdee3e42f18c05"
    }
    assert (manifest.rows, manifest.bytes, manifest.extra) == (300, 7188, {})


def test_a_manifest_is_written_as_before_plus_its_schema_version() -> None:
    written = CuratedManifest.from_json(OLD_MANIFEST).to_json()
    lines = written.decode().splitlines()
    assert lines[1] == ' "schema_version": 1,'
    assert "\n".join(lines[:1] + lines[2:]).encode() == OLD_MANIFEST


def test_a_manifest_round_trips() -> None:
    manifest = CuratedManifest.from_json(OLD_MANIFEST)
    assert CuratedManifest.from_json(manifest.to_json()) == manifest


def test_a_manifest_records_its_writers_lease_token_and_reads_old_ones_without() -> None:
    old = CuratedManifest.from_json(OLD_MANIFEST)
    fenced = replace(old, lease_token=7)

    assert old.lease_token is None
    assert "lease_token" not in json.loads(old.to_json())
    assert json.loads(fenced.to_json())["lease_token"] == 7
    assert CuratedManifest.from_json(fenced.to_json()) == fenced
    with pytest.raises(ArtifactError, match="lease_token"):
        CuratedManifest.from_dict({**json.loads(OLD_MANIFEST), "lease_token": "seven"})


def test_a_manifest_without_run_id_is_accepted() -> None:
    raw = json.loads(OLD_MANIFEST)
    del raw["run_id"]
    assert CuratedManifest.from_dict(raw).run_id == ""


# ---------------------------------------------------------- quarantine record


def test_an_old_quarantine_record_loads_and_is_written_back_unchanged() -> None:
    record = QuarantineRecord.from_json(OLD_RECORD)
    assert record.schema_version == 1
    assert record.failed_checks[0]["samples"][0]["values"] == {"quantity": "0", "café": "é"}
    assert not record.released
    assert record.record_key == record.key + ".quarantine.json"
    lines = record.to_json().decode().splitlines()
    assert lines[1] == '  "schema_version": 1,'
    assert "\n".join(lines[:1] + lines[2:]).encode() == OLD_RECORD


def test_a_released_record_round_trips() -> None:
    record = replace(
        QuarantineRecord.from_json(OLD_RECORD),
        released_at="2026-12-04T10:00:00+00:00",
        released_by="alice",
        history=({"key": "quarantine/x", "reason": "pgp.no_key"},),
    )
    again = QuarantineRecord.from_json(record.to_json())
    assert again == record
    assert again.released


def test_a_record_missing_its_optional_fields_gets_their_defaults() -> None:
    raw = json.loads(OLD_RECORD)
    for name in ("member", "failed_checks", "released_at", "released_by", "history"):
        del raw[name]
    record = QuarantineRecord.from_dict(raw)
    assert (record.member, record.failed_checks, record.history) == (None, (), ())


# ----------------------------------------------------------- quality report


def test_an_old_quality_report_loads_its_summary_and_keeps_the_rest_as_extra() -> None:
    summary = QualitySummary.from_json(report_bytes())
    assert summary.schema_version == 1
    assert summary.dt is None
    assert summary.delivery == Delivery(
        key="landing/pos/pos_20261106.csv",
        etag="823c3ce1032bbaceca21474d9ae03ea3",
        size=27670,
        run_id="20261203T073221Z-5d15eb",
        members=("pos_20261106.csv",),
    )
    assert summary.rows == RowCounts(total=300, malformed=0, rejected=1, valid=299)
    assert summary.passed
    assert [check.name for check in summary.failed_checks] == ["range:quantity"]
    assert summary.extra["profile"] == OLD_REPORT["profile"]
    assert summary.extra["duration_seconds"] == 0.08


def test_a_quality_report_keeps_every_field_through_a_round_trip() -> None:
    summary = QualitySummary.from_json(report_bytes())
    written = json.loads(summary.to_json())
    assert written.pop("schema_version") == 1
    assert written.pop("dt") is None
    assert written == OLD_REPORT
    assert QualitySummary.from_json(summary.to_json()) == summary


def test_a_failed_report_with_its_reason_and_date_round_trips() -> None:
    summary = QualitySummary(
        delivery=Delivery("landing/pos/a.csv", "e", 10, "r1"),
        dataset="pos",
        dt="2026-11-01",
        file="a.csv",
        outcome="fail",
        rows=RowCounts(total=3, malformed=1, rejected=2, valid=0),
        checks=(CheckSummary("not_null:id", "not_null", "error", False, 2, "id"),),
        reason=QualityReason("data.quality", "too many rows fail"),
    )
    assert QualitySummary.from_json(summary.to_json()) == summary
    assert not summary.passed


# ---------------------------------------------------------- withdrawal notice

NOTICE = b"""{
 "schema_version": 1,
 "dataset": "pos",
 "dt": "2026-02-11",
 "landing_key": "landing/pos/pos_20261103.csv",
 "withdrawn_at": "2026-12-07T09:40:01.479942Z",
 "run_id": "20261207T094001Z-abcdef",
 "moved_to": ["validated/pos/dt=2026-11-03/"]
}"""


def test_a_withdrawal_notice_round_trips_at_its_partitions_state_key() -> None:
    notice = WithdrawalNotice.from_json(NOTICE)
    assert WithdrawalNotice.from_json(notice.to_json()) == notice
    assert notice.moved_to == ("validated/pos/dt=2026-11-03/",)
    assert notice.key == "_state/file_processing/withdrawals/pos/dt=2026-02-11.json"


def test_a_withdrawal_notice_names_the_data_keys_it_withdrew_and_an_older_one_names_none() -> None:
    keys = ["validated/pos/dt=2026-02-11/pos_20261103.csv"]
    notice = WithdrawalNotice.from_dict({**json.loads(NOTICE), "data_keys": keys})
    assert notice.data_keys == tuple(keys)
    assert WithdrawalNotice.from_json(notice.to_json()) == notice
    assert WithdrawalNotice.from_json(NOTICE).data_keys == ()  # written before the field
    with pytest.raises(ArtifactError) as caught:
        WithdrawalNotice.from_dict({**json.loads(NOTICE), "data_keys": [1]})
    assert caught.value.field == "data_keys[0]"


def test_a_withdrawal_notice_records_which_object_it_withdrew_under_each_data_key() -> None:
    """A build that read a withdrawn key with another ETag, the object published under the
    key now, read a new delivery under that key (a failed void, a redelivery): not
    withdrawn. Another ETag alone (an earlier file of the withdrawn key, overwritten before
    the move) and a key without an ETag recorded (a notice of an older file lane) withdraw
    any build that read the key, as before."""
    key, other = "validated/pos/dt=2026-02-11/a.csv", "validated/pos/dt=2026-02-11/b.csv"
    raw = {**json.loads(NOTICE), "data_keys": [key, other], "data_etags": {key: "e1"}}
    notice = WithdrawalNotice.from_dict(raw)
    assert notice.data_etags == {key: "e1"}
    assert WithdrawalNotice.from_json(notice.to_json()) == notice
    assert notice.withdrew({key: "e1"})
    assert notice.withdrew({key: "e1"}, {key: "e1"})  # withdrawn, its manifest not yet removed
    assert not notice.withdrew({key: "e2"}, {key: "e2"})  # a new delivery under the same key
    assert notice.withdrew({key: "e2"})  # an earlier file under the key, none published now
    assert notice.withdrew({key: "e2"}, {key: "e3"})  # an earlier file, a later one published
    assert notice.withdrew({key: "e2", other: "e9"}, {key: "e2", other: "e9"})  # no ETag: by key
    assert not notice.withdrew({"validated/pos/dt=2026-02-11/c.csv": "e1"})
    old = WithdrawalNotice.from_dict({**json.loads(NOTICE), "data_keys": [key]})
    assert old.data_etags == {}  # written before the field: judged by keys only
    assert old.withdrew({key: "e2"})
    with pytest.raises(ArtifactError) as caught:
        WithdrawalNotice.from_dict({**raw, "data_etags": {key: 1}})
    assert caught.value.field == f"data_etags.{key}"


def test_document_times_are_utc_in_one_fixed_format_whose_text_order_is_time_order() -> None:
    moment = datetime(2026, 12, 7, 10, 40, 1, 5, tzinfo=timezone(timedelta(hours=1)))
    assert utc_timestamp(moment) == "2026-12-07T09:40:01.000005Z"
    later = utc_timestamp(datetime(2026, 12, 7, 9, 40, 2, tzinfo=UTC))
    assert utc_timestamp(moment) < later


def test_a_withdrawal_notice_says_whether_its_move_emptied_the_day_and_an_older_one_does_not() -> (
    None
):
    notice = WithdrawalNotice.from_dict({**json.loads(NOTICE), "emptied": True})
    assert notice.emptied
    assert WithdrawalNotice.from_json(notice.to_json()) == notice
    assert not WithdrawalNotice.from_json(NOTICE).emptied  # written before the field: unknown
    with pytest.raises(ArtifactError, match="emptied"):
        WithdrawalNotice.from_dict({**json.loads(NOTICE), "emptied": "yes"})


@pytest.mark.parametrize(
    "withdrawn_at",
    ["2026-12-07T09:40:01+00:00", "2026-12-07T09:40:01.479942", "2026-13-07T09:40:01.479942Z"],
)
def test_a_notice_time_in_another_format_is_refused_naming_the_field(withdrawn_at: str) -> None:
    raw = {**json.loads(NOTICE), "withdrawn_at": withdrawn_at}
    with pytest.raises(ArtifactError, match="expected a UTC time") as caught:
        WithdrawalNotice.from_dict(raw, key="_state/n.json")
    assert (caught.value.field, caught.value.key) == ("withdrawn_at", "_state/n.json")


# ---------------------------------------------------------- compatibility


@pytest.mark.parametrize(
    ("artifact", "document"),
    [
        (CuratedManifest, OLD_MANIFEST),
        (QuarantineRecord, OLD_RECORD),
        (QualitySummary, report_bytes()),
        (WithdrawalNotice, NOTICE),
    ],
)
def test_fields_from_a_newer_writer_are_kept_and_written_back(
    artifact: Any, document: bytes
) -> None:
    raw = {**json.loads(document), "retention_days": 30, "extra": "theirs"}
    read = artifact.from_dict(raw)
    assert read.extra.items() >= {"retention_days": 30, "extra": "theirs"}.items()
    assert json.loads(read.to_json()).items() >= raw.items()


@pytest.mark.parametrize(
    ("artifact", "document"),
    [
        (CuratedManifest, OLD_MANIFEST),
        (QuarantineRecord, OLD_RECORD),
        (QualitySummary, report_bytes()),
        (WithdrawalNotice, NOTICE),
    ],
)
def test_a_newer_schema_version_is_refused(artifact: Any, document: bytes) -> None:
    raw = {**json.loads(document), "schema_version": 2}
    with pytest.raises(ArtifactError, match="version 2 is newer") as caught:
        artifact.from_dict(raw)
    assert caught.value.field == "schema_version"


def test_extra_fields_may_not_shadow_the_documents_own() -> None:
    manifest = replace(CuratedManifest.from_json(OLD_MANIFEST), extra={"rows": 1})
    with pytest.raises(ValueError, match="rows"):
        manifest.to_json()


# ------------------------------------------------------- malformed documents


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"files": "a.parquet"}, "files", "expected a list"),
        ({"files": ["a", 3]}, "files[1]", "expected a string"),
        ({"rows": "300"}, "rows", "expected a whole number"),
        ({"rows": -1}, "rows", "expected a whole number"),
        ({"bytes": True}, "bytes", "expected a whole number"),
        ({"dt": "2026-11-31"}, "dt", "expected a date"),
        ({"dt": "20261101"}, "dt", "expected a date"),
        ({"inputs": {"k": 1}}, "inputs.k", "expected a string"),
        ({"schema_version": 0}, "schema_version", "expected a version number"),
        ({"schema_version": "1"}, "schema_version", "expected a version number"),
        ({"generation": None}, "generation", "expected a string, got null"),
    ],
)
def test_a_malformed_manifest_is_refused_naming_the_field(
    change: dict[str, Any], field: str, problem: str
) -> None:
    raw = {**json.loads(OLD_MANIFEST), **change}
    with pytest.raises(ArtifactError, match=problem) as caught:
        CuratedManifest.from_dict(raw)
    assert caught.value.field == field
    assert caught.value.artifact == "curated manifest"
    assert f"field {field!r}" in str(caught.value)


def test_a_missing_field_is_refused_by_name() -> None:
    raw = json.loads(OLD_RECORD)
    del raw["source_etag"]
    with pytest.raises(ArtifactError, match="quarantine record field 'source_etag': missing"):
        QuarantineRecord.from_dict(raw)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"outcome": "passed"}, "outcome"),
        ({"delivery": {"key": "landing/a"}}, "delivery.etag"),
        ({"rows": {"total": 1, "malformed": 0, "rejected": 0}}, "rows.valid"),
        ({"checks": [{"name": "x"}]}, "checks[0].severity"),
        ({"checks": ["columns"]}, "checks[0]"),
        ({"reason": {"code": "data.quality"}}, "reason.message"),
        ({"dt": "yesterday"}, "dt"),
    ],
)
def test_a_malformed_quality_report_is_refused_naming_the_nested_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ArtifactError) as caught:
        QualitySummary.from_json(report_bytes(**change))
    assert caught.value.field == field


def test_failed_checks_must_be_json_objects() -> None:
    raw = {**json.loads(OLD_RECORD), "failed_checks": ["range:quantity"]}
    with pytest.raises(ArtifactError, match="expected a JSON object") as caught:
        QuarantineRecord.from_dict(raw)
    assert caught.value.field == "failed_checks[0]"


@pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe", b"[1, 2]", b"null"])
def test_a_document_that_is_not_a_json_object_is_refused_naming_its_key(data: bytes) -> None:
    with pytest.raises(ArtifactError) as caught:
        CuratedManifest.from_json(data, key="curated/pos/dt=2026-11-01/_manifest.json")
    assert caught.value.field is None
    assert str(caught.value).startswith("curated/pos/dt=2026-11-01/_manifest.json: ")


def test_an_artifact_error_is_a_value_error_of_the_platform() -> None:
    with pytest.raises(ArtifactError) as caught:
        CuratedManifest.from_json(b"{}")
    assert isinstance(caught.value, EtlError)
    assert isinstance(caught.value, ValueError)


def test_an_artifact_error_pickles_with_its_fields() -> None:
    error = ArtifactError("quality report", "rows.valid", "missing", "validated/a.quality.json")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ArtifactError
    assert (copy.artifact, copy.field, copy.problem, copy.key, str(copy)) == (
        error.artifact,
        error.field,
        error.problem,
        error.key,
        str(error),
    )


def test_a_withdrawal_notice_names_an_etag_with_or_without_s3s_quotes_alike() -> None:
    """An ETag copied into a notice as ``aws s3api head-object`` prints it (quoted, or weak)
    names the object the store lists unquoted: the build that read it is withdrawn, and a
    new delivery under the key (another ETag, published now) is still told from it."""
    key = "validated/pos/dt=2026-02-11/a.csv"
    for recorded in ('"e1"', 'W/"e1"', " e1 "):
        raw = {**json.loads(NOTICE), "data_keys": [key], "data_etags": {key: recorded}}
        notice = WithdrawalNotice.from_dict(raw)
        assert notice.withdrew({key: "e1"}, {key: "e1"}), recorded
        assert not notice.withdrew({key: "e2"}, {key: "e2"}), recorded
