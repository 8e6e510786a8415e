"""compose/example.py, the `example` service's preparation: contracts pointed at the API
service, drops uploaded once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from repo_layout import REPO

SCRIPT = REPO / "compose/example.py"
EXAMPLE = REPO / "examples/retail"


def prepare(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env |= {
        "ETL_STORAGE_URL": str(tmp_path / "store"),
        "ETL_CONFIG_DIR": str(tmp_path / "config"),
        "ETL_LOG_FORMAT": "json",
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def small_example(root: Path, source: str) -> Path:
    """An example laid out like examples/retail: contracts, an API source, drops."""
    (root / "config/datasets").mkdir(parents=True)
    (root / "config/datasets/sales.toml").write_text('dataset = "sales"\n')
    (root / "config/sources").mkdir()
    (root / "config/sources/retail_footfall.toml").write_text(source)
    (root / "landing/pos").mkdir(parents=True)
    (root / "landing/pos/pos_20261101.csv").write_text("a,b\n1,2\n")
    (root / "reference").mkdir()
    (root / "reference/stores.csv").write_text("store_id\nS001\n")
    return root


def test_contracts_are_copied_with_the_api_source_pointed_at_the_service(tmp_path: Path) -> None:
    source = '# the API\nbase_url = "http://127.0.0.1:8000"\ntimeout = "10s"\n'
    example = small_example(tmp_path / "example", source)
    (tmp_path / "store").mkdir()
    (tmp_path / "config/datasets").mkdir(parents=True)
    stale = tmp_path / "config/datasets/removed_from_the_example.toml"
    stale.write_text('dataset = "gone"\n')
    result = prepare(
        tmp_path,
        *("--api-url", "http://example:8000", "--api-schedule", "*/2 * * * *"),
        *("--example", str(example)),
    )
    assert result.returncode == 0, result.stderr
    assert not stale.exists()
    config = tmp_path / "config"
    assert (config / "datasets/sales.toml").read_text() == 'dataset = "sales"\n'
    pointed = (config / "sources/retail_footfall.toml").read_text().splitlines()
    assert pointed[0] == "# the API"
    assert pointed[1].startswith('base_url = "http://example:8000"')
    assert pointed[2].startswith('schedule = "*/2 * * * *"')
    assert pointed[3] == 'timeout = "10s"'
    assert "127.0.0.1" in (example / "config/sources/retail_footfall.toml").read_text()


def test_a_source_with_its_own_schedule_keeps_it(tmp_path: Path) -> None:
    source = 'base_url = "http://127.0.0.1:8000"\nschedule = "0 * * * *"\n'
    example = small_example(tmp_path / "example", source)
    (tmp_path / "store").mkdir()
    result = prepare(
        tmp_path,
        *("--api-url", "http://example:8000", "--api-schedule", "*/2 * * * *"),
        *("--example", str(example)),
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "config/sources/retail_footfall.toml").read_text()
    assert 'schedule = "0 * * * *"' in text
    assert "*/2" not in text


def test_a_source_without_base_url_is_refused_by_name(tmp_path: Path) -> None:
    example = small_example(tmp_path / "example", 'timeout = "10s"\n')
    (tmp_path / "store").mkdir()
    result = prepare(tmp_path, "--api-url", "http://example:8000", "--example", str(example))
    assert result.returncode != 0
    assert "retail_footfall.toml: no top-level base_url line" in result.stderr


def test_the_retail_example_contracts_are_copied(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    result = prepare(tmp_path, "--api-url", "http://example:8000")
    assert result.returncode == 0, result.stderr
    template = EXAMPLE / "config"
    names = sorted(p.relative_to(template) for p in template.rglob("*.toml"))
    copied = sorted(p.relative_to(tmp_path / "config") for p in (tmp_path / "config").rglob("*"))
    assert [c for c in copied if c.suffix == ".toml"] == names


def test_drops_are_uploaded_once(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    first = prepare(tmp_path, "--api-url", "http://example:8000")
    assert first.returncode == 0, first.stderr
    drops = sorted(p.name for p in (EXAMPLE / "landing").rglob("*") if p.is_file())
    assert f"landing: {len(drops)} uploaded, 0 already there" in first.stdout
    stored = tmp_path / "store/landing/pos"
    for name in drops:
        assert (stored / name).read_bytes() == next((EXAMPLE / "landing").rglob(name)).read_bytes()
    assert (tmp_path / "store/reference/stores.csv").is_file()
    second = prepare(tmp_path, "--api-url", "http://example:8000")
    assert second.returncode == 0, second.stderr
    assert f"landing: 0 uploaded, {len(drops)} already there" in second.stdout


def test_a_store_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    result = prepare(tmp_path, "--api-url", "http://example:8000")
    assert result.returncode == 2
    assert str(tmp_path / "store") in result.stderr
