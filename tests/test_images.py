"""The Dockerfiles and the compose file are checked offline (no Docker engine here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from repo_layout import REPO, RUNTIMES, venv_tool

from etl_core.testing.services import service_unavailable

DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))


def test_there_is_one_image_per_runtime() -> None:
    assert sorted(p.name for p in DOCKERFILES) == sorted(f"{m}.Dockerfile" for m in RUNTIMES)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    result = subprocess.run(
        [venv_tool("hadolint"), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_runs_as_a_non_root_user(dockerfile: Path) -> None:
    users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(), flags=re.MULTILINE)
    assert users, f"{dockerfile.name} never switches away from root"
    assert users[-1].split(":")[0] not in {"root", "0"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_installs_through_the_tested_wheel_script(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    module = dockerfile.name.removesuffix(".Dockerfile")
    assert "wheels.sh build /wheels" in text
    assert "wheels.sh install /wheels" in text
    assert f"COPY packages/{module} packages/{module}" in text
    assert f'ENTRYPOINT ["etl-{module.replace("_", "-")}"]' in text


def test_compose_file_is_valid() -> None:
    if shutil.which("docker-compose") is None:
        service_unavailable("docker-compose", "install the Debian package docker-compose")
    result = subprocess.run(
        ["docker-compose", "-f", "compose/docker-compose.yml", "config", "-q"],
        cwd=REPO,
        env={**os.environ, "POSTGRES_PASSWORD": "check", "MINIO_ROOT_PASSWORD": "check-only"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_file_refuses_to_start_without_secrets() -> None:
    if shutil.which("docker-compose") is None:
        service_unavailable("docker-compose", "install the Debian package docker-compose")
    env = {
        k: v for k, v in os.environ.items() if k not in {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"}
    }
    result = subprocess.run(
        ["docker-compose", "-f", "compose/docker-compose.yml", "config", "-q"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "PASSWORD" in result.stderr
