"""The Dockerfiles, checked offline (no Docker engine here): hadolint, and what each declares.

The install steps themselves are run by tests/test_packaging.py, from the same lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from dockerfiles import IMAGES, Dockerfile, DockerIgnore, Image
from repo_layout import PACKAGE_DIRS, REPO, venv_tool


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
    if image.name == "etl-observability":
        assert check[:2] == ["python", "-c"]
        assert "/healthz" in check[2]
        assert "ETL_SERVE_PORT" in check[2]
    else:
        assert check[:2] == [image.name, "ping"]
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


@pytest.mark.parametrize(
    "variables",
    [{}, {"ETL_SERVE_PORT": ""}, {"ETL_SERVE_PORT": "  "}, {"ETL_SERVE_PORT": " 9200 "}],
    ids=repr,
)
def test_observability_health_check_asks_the_port_serve_listens_on(
    variables: dict[str, str],
) -> None:
    """An empty ``ETL_SERVE_PORT`` (``ETL_SERVE_PORT: ${PORT:-}``) counts as unset for
    ``serve``, which then listens on 9108: the check asks 9108, not port 80."""
    from etl_core.runtime import load_runtime_settings
    from observability.settings import ObservabilitySettings

    check = Dockerfile.read(REPO / "docker/observability.Dockerfile").healthcheck()
    recorder = (
        "import sys, urllib.request\n"
        "urllib.request.urlopen = lambda url, timeout: print(url)\n"
        "exec(sys.argv[1])\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")} | variables
    asked = subprocess.run(
        [sys.executable, "-c", recorder, check[2]],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    settings, _ = load_runtime_settings(ObservabilitySettings, {}, env=variables)

    assert asked.stdout.strip() == f"http://127.0.0.1:{settings.serve_port}/healthz"
