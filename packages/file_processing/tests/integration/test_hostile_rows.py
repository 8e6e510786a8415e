"""Hostile rows through the whole lane: the verdict, its reason, and nothing lost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from etl_core.units import ByteSize
from file_processing.errors import QualityEngineError
from file_processing.ledger import Ledger
from file_processing.quarantine import read_record

MIB = 1024 * 1024
WIDE_COLUMNS = 400


def add_wide_contract(lane: Any) -> None:
    columns = "".join(f'[[columns]]\nname = "c{i}"\n' for i in range(WIDE_COLUMNS))
    (lane.config_dir / "datasets" / "wide.toml").write_text(
        f'dataset = "wide"\nsource = "wide"\npattern = "wide_{{date:%Y%m%d}}.csv"\n{columns}'
    )


def wide_csv() -> bytes:
    header = ",".join(f"c{i}" for i in range(WIDE_COLUMNS))
    return f"{header}\n{','.join('x' for _ in range(WIDE_COLUMNS))}\n".encode()


def test_a_row_over_32_mib_is_quarantined_byte_for_byte_as_too_large(local_lane: Any) -> None:
    body = b"id,amount\n1,1.00\n2," + b"9" * (33 * MIB) + b"\n3,3.00\n"
    key = local_lane.deliver("orders_20261201.csv", body)
    with local_lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == "data.too_large"
    assert "line 3" in outcome.reason["message"]
    assert local_lane.keys("validated/") == []
    record = read_record(local_lane.store, outcome.outputs[0])
    assert record.reason == "data.too_large"
    assert local_lane.store.read_bytes(record.key) == body
    assert local_lane.store.read_bytes(key) == body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"id,amount\r\n1,1.00\n2,2.00\r\n", "data.parse_error"),  # mixed line breaks
        (b"id,amount\n1,1.00,x\n2,2.00\n3,3.00\n", "data.parse_error"),  # a ragged row
        (b"id,total\n1,1.00\n", "data.schema"),
        (b"id,amount\n1,one\n", "data.type"),
        (b"id,amount\n99999999999999999999,1.00\n", "data.number_range"),
    ],
)
def test_each_kind_of_bad_row_gets_its_own_reason(lane: Any, body: bytes, reason: str) -> None:
    key = lane.deliver("orders_20261202.csv", body)
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == reason
    record = read_record(lane.store, outcome.outputs[0])
    assert lane.store.read_bytes(record.key) == body


def test_a_cr_only_file_is_validated_with_every_row(lane: Any) -> None:
    key = lane.deliver("orders_20261203.csv", b"id,amount\r1,1.00\r2,2.00\r3,3.00\r")
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "validated", outcome.reason
    assert [m["rows"] for m in outcome.members] == [3]


def test_a_file_too_wide_is_refused_before_the_engine(local_lane: Any) -> None:
    add_wide_contract(local_lane)
    key = local_lane.deliver("wide_20261204.csv", wide_csv(), source="wide")
    with local_lane.processor(max_columns=100) as processor:
        outcome = processor.process(key)
    assert outcome.reason is not None
    assert outcome.reason["code"] == "data.too_wide"


def test_an_engine_out_of_memory_blames_no_file_and_the_next_run_completes(
    local_lane: Any,
) -> None:
    add_wide_contract(local_lane)
    key = local_lane.deliver("wide_20261205.csv", wide_csv(), source="wide")
    starved = {"quality_memory_limit": ByteSize("8MiB"), "quality_threads": 1}
    with (
        local_lane.processor(**starved) as processor,
        pytest.raises(QualityEngineError, match=r"(?i)out of memory"),
    ):
        processor.process(key)
    assert local_lane.keys("quarantine/") == []
    ledger = Ledger(local_lane.store, run_id="x", claim_timeout=timedelta(hours=1))
    record = ledger.get(key)
    assert record is not None
    assert record.state == "failed"
    with local_lane.processor() as processor:
        assert processor.process(key).status == "validated"
