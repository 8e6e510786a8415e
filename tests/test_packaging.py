"""Every package is a valid Poetry project whose wheels install offline, as the images do."""

from __future__ import annotations

import email.parser
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from repo_layout import PACKAGE_DIRS, REPO, venv_tool


@pytest.mark.parametrize("project", ["(root)", *PACKAGE_DIRS], ids=str)
def test_pyproject_passes_poetry_check(project: str) -> None:
    directory = REPO if project == "(root)" else PACKAGE_DIRS[project]
    result = subprocess.run(
        [venv_tool("poetry"), "check", "--directory", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of every package and its dependencies, built by the images' own script."""
    out = tmp_path_factory.mktemp("wheelhouse")
    dirs = [str(d.relative_to(REPO)) for d in PACKAGE_DIRS.values()]
    subprocess.run(
        ["sh", "docker/wheels.sh", "build", str(out), *dirs],
        cwd=REPO,
        env={**os.environ, "PYTHON": sys.executable},
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def wheel_metadata(wheelhouse: Path, dist: str) -> email.message.Message:
    [wheel] = wheelhouse.glob(f"{dist.replace('-', '_')}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


@pytest.mark.slow
@pytest.mark.parametrize("dist", ["etl-file-processing", "etl-data-pipeline", "etl-observability"])
def test_runtime_wheel_names_version_ranges_never_paths(wheelhouse: Path, dist: str) -> None:
    requires = wheel_metadata(wheelhouse, dist).get_all("Requires-Dist") or []
    core = [r for r in requires if r.startswith("etl-core[") and "extra ==" not in r]
    assert core, requires
    extras = set(core[0].split("[", 1)[1].split("]", 1)[0].split(","))
    assert extras == {"s3", "cli"}
    assert ">=0.1" in core[0]
    assert "<0.2" in core[0]
    assert not [r for r in requires if "file:" in r or " @ " in r]


@pytest.mark.slow
def test_observability_wheel_ships_its_alert_rules_and_dashboard(wheelhouse: Path) -> None:
    [wheel] = wheelhouse.glob("etl_observability-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "observability/deploy/prometheus/rules.yml" in names
    assert "observability/deploy/grafana/etl.json" in names


@pytest.mark.slow
@pytest.mark.parametrize(
    ("requirement", "script"),
    [
        ("etl-file-processing[schema]", "etl-file-processing"),
        ("etl-data-pipeline[schema]", "etl-data-pipeline"),
        ("etl-observability[schema]", "etl-observability"),
    ],
)
def test_image_install_steps_give_a_working_entry_point(
    wheelhouse: Path, tmp_path: Path, requirement: str, script: str
) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        ["sh", "docker/wheels.sh", "install", str(wheelhouse), requirement],
        cwd=REPO,
        env={**os.environ, "PYTHON": str(python)},
        check=True,
        capture_output=True,
        timeout=600,
    )
    result = subprocess.run(
        [str(env_dir / "bin" / script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
