"""Benchmark: one zip of many small members, processed end to end by the real CLI.

A vendor zip of ``--members`` tiny CSV files (one row each, deterministic) is
dropped in a local store and processed with ``etl-file-processing process --json``
in a child process; wall time and the child's peak RSS (``wait4``) are reported
with the per-member cost and CPU seconds. Issue 12's target: 10,000 members in under
30 s and under 500 MB. The answer is checked: validated, one manifest member per zip
member. ``--reference BIN`` runs another installation's ``etl-file-processing`` (say,
the main branch's venv) on the same zips, interleaved, for a ratio measured under the
same load.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING


def _load_harness() -> ModuleType:
    """bench/harness.py, loaded once by path as ``bench_harness`` (bench/ is off sys.path)."""
    if "bench_harness" not in sys.modules:
        path = Path(__file__).with_name("harness.py")
        spec = importlib.util.spec_from_file_location("bench_harness", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules["bench_harness"]


if TYPE_CHECKING:
    import harness
else:
    harness = _load_harness()

KEY = "landing/vendor/orders_20261101.csv.zip"
TARGET_MEMBERS, TARGET_SECONDS, TARGET_RSS_MB = 10_000, 30.0, 500
CONTRACT = """
dataset = "orders"
source = "vendor"
pattern = "orders_{date:%Y%m%d}.csv*"
format = "csv"
packing = "auto"
encryption = "none"

[[columns]]
name = "id"
type = "int"
required = true

[[columns]]
name = "amount"
type = "decimal"
precision = 12
scale = 2
"""


def lay_out(layout: harness.Layout, members: int) -> Path:
    """A fresh store holding the zip (a kept ``--workdir``'s last one removed); the config dir."""
    shutil.rmtree(layout.base, ignore_errors=True)
    config = layout.base / "config"
    zip_path = layout.store / KEY
    zip_path.parent.mkdir(parents=True)
    (config / "datasets").mkdir(parents=True)
    (config / "datasets" / "orders.toml").write_text(CONTRACT)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(members):
            archive.writestr(f"part_{i:05d}.csv", b"id,amount\n%d,%d.50\n" % (i, i % 900))
    return config


def run_once(base: Path, members: int, bin_dir: Path = harness.BIN) -> harness.ChildRun:
    layout = harness.Layout(base)
    config = lay_out(layout, members)
    cmd = [
        str(bin_dir / "etl-file-processing"),
        "--storage",
        layout.store.as_uri(),
        "--config-dir",
        str(config),
        "process",
        KEY,
        "--json",
    ]
    env = harness.child_env(ETL_LOG_FORMAT="json", ETL_WORK_DIR=str(base / "scratch"))
    (base / "scratch").mkdir()
    return harness.run_child(cmd, name="process", logs=layout.logs, cwd=base, env=env)


def check(run: harness.ChildRun, members: int) -> str | None:
    """Why the run's answer is wrong, or ``None``."""
    if run.returncode != 0:
        return f"exit {run.returncode}: {run.tail()}"
    answer = run.json_answer()
    if answer is None:
        return f"no JSON answer on stdout: {run.tail()}"
    if answer.get("status") != "validated" or len(answer.get("members", [])) != members:
        return f"status {answer.get('status')}, {len(answer.get('members', []))} members"
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py archive_members", description=__doc__)
    parser.add_argument(
        "--members",
        type=int,
        nargs="+",
        default=[1_000, TARGET_MEMBERS],
        metavar="N",
        help="members per zip (default: %(default)s)",
    )
    parser.add_argument("--workdir", type=Path, help="scratch directory, kept afterwards")
    parser.add_argument(
        "--reference",
        type=Path,
        metavar="BIN",
        help="a venv's bin/ whose etl-file-processing runs too, before each of ours",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    if harness.missing_entry_point("etl-file-processing"):
        return 1
    print(f"archive_members benchmark: {args.members} members per zip, workdir {args.workdir}")
    harness.print_settings()
    table = [
        f"{'line':<10} {'members':>8} {'seconds':>9} {'ms/member':>10} {'CPU s':>7} "
        f"{'peak RSS MB':>12} {'vs ref':>7}  answer"
    ]
    failed = missed = False
    lines = [("reference", args.reference)] if args.reference else []
    lines.append(("this", harness.BIN))
    with harness.workdir(args.workdir) as work:
        for members in sorted(set(args.members)):
            runs: dict[str, harness.ChildRun] = {}
            for line, bin_dir in lines:
                run = run_once(work / f"members-{members}-{line}", members, bin_dir)
                runs[line] = run
                problem = check(run, members)
                failed |= problem is not None
                rss_mb = run.peak_rss_bytes / harness.MB
                reference = runs.get("reference")
                ratio = f"{run.seconds / reference.seconds:.2f}x" if reference else "-"
                table.append(
                    f"{line:<10} {members:>8,} {run.seconds:>9.1f} "
                    f"{run.seconds / members * 1000:>10.2f} {run.cpu_seconds:>7.1f} "
                    f"{rss_mb:>12.0f} {ratio:>7}  "
                    f"{problem or 'validated, every member in the manifest'}"
                )
                if members == TARGET_MEMBERS and line == "this":
                    missed = run.seconds >= TARGET_SECONDS or rss_mb >= TARGET_RSS_MB
    target = (
        f"target: {TARGET_MEMBERS:,} members in < {TARGET_SECONDS:.0f} s and "
        f"< {TARGET_RSS_MB} MB" + (" -- MISSED" if missed else "")
    )
    harness.print_report(table, [], [target])
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
