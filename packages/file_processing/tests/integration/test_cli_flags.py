"""`etl-file-processing` refusing a flag's value names the flag typed."""

from __future__ import annotations

from pathlib import Path

from etl_core.testing.scripts import run_script


def test_a_refused_subcommand_flag_value_names_the_flag_typed_and_exits_2(tmp_path: Path) -> None:
    """``scan --executor bogus`` is refused from ``--executor``, the flag typed, not from
    ``override executor``, before any object is looked at."""
    (tmp_path / "datasets").mkdir()
    result = run_script(
        "etl-file-processing",
        *("--config-dir", str(tmp_path), "--storage", str(tmp_path)),
        *("scan", "--executor", "bogus"),
        cwd=tmp_path,
    )

    assert result.returncode == 2
    assert "executor: expected one of 'local', 'celery', got 'bogus'" in result.stderr
    assert "(from flag --executor)" in result.stderr
