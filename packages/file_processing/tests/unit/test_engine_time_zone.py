"""The quality engine reads dates and instants in UTC, whatever the host's ``TZ``.

Each case runs in a subprocess whose environment sets ``TZ``: DuckDB (ICU) takes the
host's zone once per process, so an in-process ``tzset`` would not reach it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def printed_in_zone(script: str, zone: str, tmp_path: Path) -> object:
    """Run ``script`` (given ``tmp_path``) in a fresh interpreter whose ``TZ`` is ``zone``;
    the JSON it printed. A fresh process, as DuckDB reads the zone once per process."""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env={**os.environ, "TZ": zone},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# A ``date`` column read with an offset, and a ``timestamp`` one compared with its bound.
PROBE = """
import json, sys
from pathlib import Path
from etl_core.contracts import Column
from file_processing.checks import typed_expr
from file_processing.engine import QualityEngine

engine = QualityEngine(Path(sys.argv[1]), memory_limit=256 * 1024 * 1024, threads=1)
try:
    day = typed_expr(Column(name="d", type="date", format="%Y-%m-%d %H:%M %z"), "v")
    stamp = typed_expr(Column(name="t", type="timestamp", format="%Y-%m-%d %H:%M %z"), "v")
    connection = engine.connect()
    (row,) = connection.execute(
        f"SELECT CAST({day} AS VARCHAR), {stamp} < TIMESTAMP '2026-11-02 00:00:00' "
        "FROM (SELECT '2026-11-02 03:30 +0000' AS v)"
    ).fetchall()
    connection.close()
finally:
    engine.close()
print(json.dumps(list(row)))
"""


@pytest.mark.parametrize(
    "zone", ["UTC", "America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata", "Pacific/Kiritimati"]
)
def test_a_value_with_an_offset_is_the_same_utc_day_and_instant_in_every_zone(
    zone: str, tmp_path: Path
) -> None:
    """03:30 UTC on 2 November is 2 November (not Los Angeles' 1 November) and not before
    midnight UTC of that day, on a host in any zone."""
    assert printed_in_zone(PROBE, zone, tmp_path) == ["2026-11-02", False]


# A whole analysis, on a file's own database (no delivery engine) and on a delivery's.
ANALYSIS = """
import json, sys
from pathlib import Path
from etl_core.contracts import load_contract
from file_processing.engine import QualityEngine
from file_processing.quality import analyze_file

root = Path(sys.argv[1])
(root / "contract.toml").write_text(
    'dataset = "sales"\\nsource = "vendor"\\npattern = "s_{date:%Y%m%d}.csv"\\n'
    '[[columns]]\\nname = "id"\\ntype = "int"\\n'
    '[[columns]]\\nname = "sold_on"\\ntype = "date"\\nformat = "%Y-%m-%d %H:%M %z"\\n'
    '[[checks]]\\nkind = "range"\\ncolumn = "sold_on"\\nmin = 2026-11-02\\n'
)
contract = load_contract(root / "contract.toml", environ={})
data = root / "s_20261102.csv"
data.write_text("id,sold_on\\n1,2026-11-02 03:30 +0000\\n")
own = analyze_file(data, contract)
engine = QualityEngine(root, memory_limit=256 * 1024 * 1024, threads=1)
try:
    shared = analyze_file(data, contract, engine=engine)
finally:
    engine.close()
print(json.dumps([own.outcome, shared.outcome]))
"""


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Pacific/Kiritimati"])
def test_a_range_check_on_a_date_with_an_offset_passes_in_every_zone(
    zone: str, tmp_path: Path
) -> None:
    """``2026-11-02 03:30 +0000`` is within ``min = 2026-11-02`` on a host in Los Angeles
    too (there it was the local 1 November: the file failed its range check)."""
    assert printed_in_zone(ANALYSIS, zone, tmp_path) == ["pass", "pass"]
