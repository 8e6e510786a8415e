"""The lanes' real commands on the retail example with their store on an S3 that fails
mid-run (moto behind :mod:`etl_core.testing.s3_faults`): a retryable fault leaves the run's
results those of an undisturbed run; a refusal fails the run naming the key, with nothing
half-published and the drop still in landing, and the re-run without faults completes to
the undisturbed result. ``tests/s3_fault_sweep.py`` tries every fault at every step; these
are the cases that guard the bugs it found and the promises most worth holding.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from repo_layout import REPO

from etl_core.testing.s3 import create_bucket, s3_server
from etl_core.testing.s3_faults import Fault, FaultyS3Proxy, faulty_s3_proxy

sys.path.insert(0, str(REPO / "tests"))
import s3_fault_sweep as sweep

pytestmark = [pytest.mark.slow, pytest.mark.s3]

SEALED = "landing/pos/pos_20261105.csv.zip.pgp"  # OpenPGP around a zip


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, FaultyS3Proxy, str]]:
    """moto, the proxy before it, and a bucket: ``(moto_url, proxy, bucket)``."""
    with s3_server() as moto, faulty_s3_proxy(moto) as proxy:
        yield moto, proxy, create_bucket(moto)


@pytest.fixture(scope="module")
def undisturbed(
    s3: tuple[str, FaultyS3Proxy, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, dict[str, int], dict[str, object]]:
    """The scan of a workspace with no fault: exit code, store keys, database rows."""
    moto, _, bucket = s3
    space = sweep.make_space(tmp_path_factory.mktemp("ref") / "ref", bucket, moto, {})
    code, stderr = space.run(sweep.ARGV["scan"], moto)
    assert code == 3, stderr[-2000:]  # some drops quarantined by design
    return code, sweep.store_keys(space, moto), sweep.db_state(space)


def _scan_through(
    s3: tuple[str, FaultyS3Proxy, str], root: Path, fault: Fault
) -> tuple[sweep.Space, int, str]:
    moto, proxy, bucket = s3
    space = sweep.make_space(root / "case", bucket, moto, {})
    proxy.clear()
    proxy.inject(fault)
    code, stderr = space.run(sweep.ARGV["scan"], proxy.url)
    fired = bool(proxy.applied)
    proxy.clear()
    assert fired, "the fault was not reached"
    return space, code, stderr


@pytest.mark.parametrize(
    "fault",
    [
        Fault("truncate", "GET", r"\.zip\.pgp$"),
        Fault("reset", "GET", r"\.zip\.pgp$"),
        Fault("error", "PUT", r"\.zip/pos_\d+\.csv$", status=503, code="SlowDown", nth=2),
        Fault("reset", "PUT", r"/_deliveries/", forward=True),
    ],
    ids=["sealed-drop-cut", "sealed-drop-reset", "member-503", "manifest-answer-lost"],
)
def test_a_scan_through_a_retryable_fault_gives_the_undisturbed_result(
    s3: tuple[str, FaultyS3Proxy, str],
    undisturbed: tuple[int, dict[str, int], dict[str, object]],
    tmp_path: Path,
    fault: Fault,
) -> None:
    moto = s3[0]
    space, code, stderr = _scan_through(s3, tmp_path, fault)
    assert code == undisturbed[0], stderr[-2000:]
    assert sweep.store_keys(space, moto) == undisturbed[1]
    assert sweep.db_state(space) == undisturbed[2]


def test_a_refused_report_fails_the_scan_naming_it_and_the_rerun_completes(
    s3: tuple[str, FaultyS3Proxy, str],
    undisturbed: tuple[int, dict[str, int], dict[str, object]],
    tmp_path: Path,
) -> None:
    moto = s3[0]
    """The sealed drop's member is written, its quality report refused: no manifest names
    the member, the drop stays in landing, the re-run publishes it once."""
    report = r"pos_20261105\.csv\.zip/pos_20261105\.csv\.quality\.json$"
    fault = Fault("error", "PUT", report, status=403, code="AccessDenied")
    space, code, stderr = _scan_through(s3, tmp_path, fault)
    assert code == 1
    assert "AccessDenied" in stderr
    assert "pos_20261105.csv.zip/pos_20261105.csv.quality.json" in stderr
    assert sweep.half_published(space, moto) == []
    keys = sweep.store_keys(space, moto)
    assert SEALED in keys  # nothing lost: the drop waits in landing
    assert not any(key.startswith("quarantine/") and "20261105" in key for key in keys)
    assert not any("dt=2026-11-05/_deliveries/" in key for key in keys)
    code, stderr = space.run(sweep.ARGV["scan"], moto)
    assert code == 0, stderr[-2000:]
    assert sweep.store_keys(space, moto) == undisturbed[1]
    assert sweep.db_state(space) == undisturbed[2]


def test_an_alert_document_cut_mid_answer_is_read_again_not_a_crash(
    s3: tuple[str, FaultyS3Proxy, str], tmp_path: Path
) -> None:
    """The first ``check`` of a store asks for the alerts' document: the 404 arrives cut
    off. botocore let urllib3's ProtocolError out and the command died with a traceback."""
    moto, proxy, bucket = s3
    space = sweep.make_space(tmp_path / "check", bucket, moto, {})
    code, stderr = space.run(sweep.ARGV["scan"], moto)
    assert code == 3, stderr[-2000:]
    proxy.clear()
    proxy.inject(Fault("truncate", "GET", r"/_state/observability/alerts\.json$"))
    code, stderr = space.run(sweep.ARGV["check"], proxy.url)
    assert proxy.applied
    proxy.clear()
    assert "Traceback" not in stderr
    assert "unexpected error" not in stderr
    assert code == 1  # the example's feeds are late: check says so, as undisturbed
    assert sweep.alert_state(space, moto)
