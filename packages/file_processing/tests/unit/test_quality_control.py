"""Control files: trailer row counts and checksum sidecars; a mismatch is control_mismatch."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from etl_core.contracts import Contract, load_contract
from file_processing.control import file_digest, parse_sidecar, sidecar_name, verify_sidecar
from file_processing.errors import RefusedError
from file_processing.quality import analyze_file, validate_file
from file_processing.reasons import Reason
from file_processing.report import CheckResult, QualityReport

DATA = "id,qty\n1,2\n2,3\n3,4\n"


def make_contract(tmp_path: Path, control: str) -> Contract:
    path = tmp_path / "contract.toml"
    path.write_text(
        'dataset = "d"\nsource = "v"\npattern = "d_{date:%Y%m%d}.csv"\n'
        '[[columns]]\nname = "id"\ntype = "int"\n[[columns]]\nname = "qty"\ntype = "int"\n'
        f"[control]\n{control}\n"
    )
    return load_contract(path, environ={})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "in" / "d_20240131.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text.encode())
    return path


def control_check(report: QualityReport, kind: str) -> CheckResult:
    (found,) = [c for c in report.checks if c.kind == kind]
    return found


TRAILER = "trailer_pattern = '^TRAILER,(?P<rows>\\d+)$'"


# ------------------------------------------------------------------ trailer


def test_trailer_with_the_right_count_passes_and_is_not_data(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, TRAILER)
    source = write(tmp_path, DATA + "TRAILER,3\n\n")
    result = validate_file(source, contract, out_dir=tmp_path / "out")
    assert result.report.outcome == "pass"
    assert result.report.rows.total == 3
    assert result.report.rows.malformed == 0
    trailer = control_check(result.report, "control.trailer")
    assert trailer.passed
    assert "line 5" in trailer.detail
    assert result.valid_path is not None
    assert result.valid_path.read_text() == DATA  # published without the trailer


def test_trailer_with_another_count_is_a_control_mismatch(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, TRAILER)
    report = analyze_file(write(tmp_path, DATA + "TRAILER,4"), contract)
    assert report.outcome == "fail"
    assert report.reason is not None
    assert report.reason.code == Reason.CONTROL_MISMATCH
    assert "says 4 rows, the file has 3" in report.reason.message


def test_missing_trailer_is_a_control_mismatch(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, TRAILER)
    report = analyze_file(write(tmp_path, DATA), contract)
    assert report.reason is not None
    assert report.reason.code == Reason.CONTROL_MISMATCH
    assert "found '3,4'" in control_check(report, "control.trailer").detail


def test_trailer_counts_malformed_rows_as_data(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, TRAILER)
    report = analyze_file(write(tmp_path, DATA + "4,5,6\nTRAILER,4\n"), contract)
    assert control_check(report, "control.trailer").passed
    assert report.rows.malformed == 1
    assert report.reason is not None
    assert report.reason.code == Reason.DATA_PARSE_ERROR


# ------------------------------------------------------------------ checksum


def test_matching_checksum_passes(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, 'checksum = "sha256"')
    digest = hashlib.sha256(DATA.encode()).hexdigest()
    report = analyze_file(write(tmp_path, DATA), contract, checksum=digest.upper())
    assert report.outcome == "pass"
    assert report.checksum == digest
    assert control_check(report, "control.checksum").passed


def test_wrong_checksum_is_a_control_mismatch(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, 'checksum = "md5"')
    report = analyze_file(write(tmp_path, DATA), contract, checksum="0" * 32)
    assert report.outcome == "fail"
    assert report.reason is not None
    assert report.reason.code == Reason.CONTROL_MISMATCH
    assert hashlib.md5(DATA.encode()).hexdigest() in report.reason.message


def test_required_checksum_without_sidecar_is_a_control_mismatch(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, 'checksum = "sha256"')
    report = analyze_file(write(tmp_path, DATA), contract)
    assert report.reason is not None
    assert report.reason.code == Reason.CONTROL_MISMATCH
    assert "none was given" in report.reason.message


SHA = hashlib.sha256(b"payload").hexdigest()


@pytest.mark.parametrize(
    "text",
    [
        f"{SHA}\n",
        f"{SHA}  d_20240131.csv\n",
        f"{SHA} *d_20240131.csv\n",
        f"SHA256 (d_20240131.csv) = {SHA}\n",
        f"{'a' * 64}  other.csv\n{SHA}  d_20240131.csv\n",
    ],
)
def test_sidecar_formats_are_understood(text: str) -> None:
    assert parse_sidecar(text, algorithm="sha256", file_name="d_20240131.csv") == SHA


@pytest.mark.parametrize("text", ["", "not a digest\n", f"{SHA[:-1]}\n", f"{SHA}\n{SHA}\n"])
def test_unusable_sidecar_is_a_control_mismatch(text: str) -> None:
    with pytest.raises(RefusedError) as caught:
        parse_sidecar(text, algorithm="sha256", file_name="d_20240131.csv")
    assert caught.value.reason == Reason.CONTROL_MISMATCH


def test_verify_sidecar_streams_the_delivery_bytes(tmp_path: Path) -> None:
    stream = io.BytesIO(b"payload")
    assert verify_sidecar(stream, f"{SHA}  x.zip\n", algorithm="sha256", file_name="x.zip") == SHA
    with pytest.raises(RefusedError, match="the sidecar says") as caught:
        verify_sidecar(io.BytesIO(b"other"), SHA, algorithm="sha256", file_name="x.zip")
    assert caught.value.reason == Reason.CONTROL_MISMATCH
    path = tmp_path / "x.zip"
    path.write_bytes(b"payload")
    assert file_digest(path, "sha256") == SHA
    assert sidecar_name("x.zip", "sha256") == "x.zip.sha256"
