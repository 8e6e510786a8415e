"""The Dockerfiles, checked offline (no Docker engine here): hadolint, and what each declares.

The install steps themselves are run by tests/test_packaging.py, from the same lines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from dockerfiles import IMAGES, Dockerfile, DockerIgnore, Image
from repo_layout import PACKAGE_DIRS, REPO, venv_tool

from etl_core.testing.ports import free_port


def dockerfile(image: Image) -> Dockerfile:
    return Dockerfile.read(image.dockerfile)


def test_the_images_are_the_specified_files_and_no_other() -> None:
    found = sorted(p.name for p in (REPO / "docker").glob("*Dockerfile*"))
    assert found == [
        "data-pipeline.Dockerfile",
        "file-processing.Dockerfile",
        "observability.Dockerfile",
    ]
    assert sorted(image.dockerfile.name for image in IMAGES) == found


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_dockerfile_passes_hadolint(image: Image) -> None:
    result = subprocess.run(
        [venv_tool("hadolint"), "--no-color", "--failure-threshold=style", str(image.dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_bad_dockerfile(tmp_path: Path) -> None:
    """The check above can fail: an untagged base image is refused."""
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\nCMD python\n")
    result = subprocess.run(
        [venv_tool("hadolint"), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged image


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_image_runs_as_a_non_root_user(image: Image) -> None:
    user = dockerfile(image).last("USER")
    assert user.split(":")[0] not in {"root", "0"}


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_image_is_built_in_two_stages_from_one_wheelhouse(image: Image) -> None:
    docker = dockerfile(image)
    stages = docker.all("FROM")
    assert len(stages) == 2
    assert stages[0].endswith(" AS build")
    [install] = [run for run in docker.all("RUN") if "wheels.sh install" in run]
    assert "--mount=type=bind,from=build,source=/wheels,target=/wheels" in install
    build = docker.wheels("build")
    assert f"packages/{image.module}[schema]" in build
    assert "packages/etl_core[celery]" in build  # workers need Celery and the Redis client
    assert "external/etl-database-schema" in build
    assert f"COPY packages/{image.module} packages/{image.module}" in {
        f"COPY {c}" for c in docker.all("COPY")
    }


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_image_installs_its_runtime_with_the_schema_and_celery_extras(image: Image) -> None:
    assert dockerfile(image).wheels("install") == [f"{image.name}[schema]", "etl-core[celery]"]


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_entry_point_is_the_console_script_under_an_init(image: Image) -> None:
    docker = dockerfile(image)
    assert docker.exec_form("ENTRYPOINT") == ["tini", "--", image.name]
    assert any("tini" in run and "apt-get install" in run for run in docker.all("RUN"))


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_default_command_is_the_long_running_service(image: Image) -> None:
    expected = ["serve"] if image.name == "etl-observability" else ["worker"]
    assert dockerfile(image).exec_form("CMD") == expected


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_docker_stop_is_a_warm_shutdown(image: Image) -> None:
    """SIGTERM reaches the runtime (tini passes it on), which finishes the units in hand."""
    assert dockerfile(image).last("STOPSIGNAL") == "SIGTERM"


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_health_check_matches_the_default_command(image: Image) -> None:
    docker = dockerfile(image)
    check = docker.healthcheck()
    serves = image.name == "etl-observability"
    assert check[:2] == [image.name, "serve-ping" if serves else "ping"]
    options = docker.healthcheck_options()
    assert {"interval", "timeout", "start-period", "retries"} <= set(options)


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_labels_name_the_image_and_its_version(image: Image) -> None:
    docker = dockerfile(image)
    labels = docker.labels()
    assert labels["org.opencontainers.image.title"] == image.name
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.revision"] == "${REVISION}"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.description"]
    pyproject = tomllib.loads((PACKAGE_DIRS[image.name] / "pyproject.toml").read_text())
    assert docker.arg_default("VERSION") == pyproject["project"]["version"]


def test_dockerignore_sends_what_the_images_copy() -> None:
    ignore = DockerIgnore.read(REPO / ".dockerignore")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for image in IMAGES:
        for source in dockerfile(image).copied_sources():
            files = [f for f in tracked if f == source or f.startswith(source.rstrip("/") + "/")]
            assert files, f"{image.dockerfile.name} copies {source}, which git does not track"
            sent = [f for f in files if not ignore.excluded(f)]
            assert [f for f in files if "/tests/" not in f] == sent, (image.name, source)
            assert any(f.endswith("pyproject.toml") for f in sent) or source.endswith(".sh")


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        ".etl/etl.sqlite3",
        "compose/.env",
        "examples/retail/keys/retail-example-secret.asc",
        "packages/etl_core/tests/conftest.py",
        "packages/etl_core/src/etl_core/__pycache__/cli.cpython-311.pyc",
        "README.md",
    ],
)
def test_dockerignore_leaves_out_what_no_image_needs(path: str) -> None:
    assert DockerIgnore.read(REPO / ".dockerignore").excluded(path)


CONTRACT = """
dataset = "pos"
source = "pos"
pattern = "pos_{date:%Y%m%d}.csv"
[[columns]]
name = "id"
"""


def installed(command: list[str]) -> list[str]:
    """``command`` as the image runs it, its console script taken from this environment."""
    return [str(Path(sys.executable).parent / command[0]), *command[1:]]


def run(command: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        installed(command), env=environ, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.mark.slow
def test_observability_health_check_asks_the_port_the_settings_file_gives_serve(
    tmp_path: Path,
) -> None:
    """The image's ``serve`` on a port set in ``etl.toml`` alone is healthy (the check
    used to ask ``ETL_SERVE_PORT`` or 9108 whatever the file said); once it stopped, the
    check fails at once, saying nothing listens there."""
    docker = Dockerfile.read(REPO / "docker/observability.Dockerfile")
    config, store, port = tmp_path / "config", tmp_path / "store", free_port()
    (config / "datasets").mkdir(parents=True)
    (config / "datasets" / "pos.toml").write_text(CONTRACT)
    (config / "etl.toml").write_text(f'serve_host = "127.0.0.1"\nserve_port = {port}\n')
    store.mkdir()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    environ = (
        inherited | docker.env() | {"ETL_STORAGE_URL": str(store), "ETL_CONFIG_DIR": str(config)}
    )
    environ |= {"ETL_SERVE_HOST": "", "ETL_LOG_FORMAT": "json"}  # on 127.0.0.1, as etl.toml says
    command = [docker.exec_form("ENTRYPOINT")[2], *docker.exec_form("CMD")]
    serve = subprocess.Popen(installed(command), env=environ, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while (checked := run(docker.healthcheck(), environ)).returncode:
            assert serve.poll() is None, checked.stderr
            assert time.monotonic() < deadline, checked.stderr
            time.sleep(0.3)
        assert checked.stdout.strip() == f"http://127.0.0.1:{port}/healthz: 200 ok"
    finally:
        serve.send_signal(signal.SIGTERM)  # docker stop
        serve.communicate(timeout=60)
    started = time.monotonic()
    down = run(docker.healthcheck(), environ)
    assert (down.returncode, time.monotonic() - started < 10) == (1, True)
    said = json.loads(down.stderr.strip().splitlines()[-1])["event"]
    assert said == f"http://127.0.0.1:{port}/healthz: connection refused (nothing listens there)"
