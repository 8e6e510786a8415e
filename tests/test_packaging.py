"""Every package is a valid Poetry project; each image's install steps, run as its
Dockerfile spells them, give working commands and a working health check."""

from __future__ import annotations

import email.parser
import os
import signal
import socket
import subprocess
import sys
import time
import venv
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from dockerfiles import IMAGES, Dockerfile, Image
from repo_layout import PACKAGE_DIRS, REPO, venv_tool

from etl_core.testing.brokers import broker_for
from etl_core.testing.ports import free_port
from etl_core.testing.processes import BackgroundProcess

BY_NAME = {image.name: image for image in IMAGES}
EXAMPLE_CONFIG = REPO / "examples/retail/config"


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
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Image], Path]:
    """An image's wheelhouse, built by its Dockerfile's own ``wheels.sh build`` line."""
    built: dict[str, Path] = {}

    def build(image: Image) -> Path:
        if image.name not in built:
            out = tmp_path_factory.mktemp(f"wheels-{image.module}")
            arguments = Dockerfile.read(image.dockerfile).wheels("build")
            subprocess.run(
                ["sh", "docker/wheels.sh", "build", str(out), *arguments],
                cwd=REPO,
                env={**os.environ, "PYTHON": sys.executable},
                check=True,
                capture_output=True,
                timeout=600,
            )
            built[image.name] = out
        return built[image.name]

    return build


@pytest.fixture(scope="module")
def installed(
    wheelhouse: Callable[[Image], Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[Image], Path]:
    """A fresh virtual environment per image with its runtime installed by the Dockerfile's
    own ``wheels.sh install`` line, offline from that image's wheelhouse: its ``bin``."""
    made: dict[str, Path] = {}

    def install(image: Image) -> Path:
        if image.name not in made:
            env_dir = tmp_path_factory.mktemp(f"venv-{image.module}")
            venv.EnvBuilder(with_pip=True).create(env_dir)
            requirements = Dockerfile.read(image.dockerfile).wheels("install")
            subprocess.run(
                ["sh", "docker/wheels.sh", "install", str(wheelhouse(image)), *requirements],
                cwd=REPO,
                env={**os.environ, "PYTHON": str(env_dir / "bin" / "python")},
                check=True,
                capture_output=True,
                timeout=600,
            )
            made[image.name] = env_dir / "bin"
        return made[image.name]

    return install


def image_env(bin_dir: Path, **values: str) -> dict[str, str]:
    """An environment like the image's: its Python first on PATH, no ETL_* of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_") and k != "DATABASE_URL"}
    return {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", **values}


def run_in(bin_dir: Path, command: list[str], **values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        env=image_env(bin_dir, **values),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wheel_metadata(wheelhouse: Path, dist: str) -> email.message.Message:
    [wheel] = wheelhouse.glob(f"{dist.replace('-', '_')}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


@pytest.mark.slow
@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_runtime_wheel_names_version_ranges_never_paths(
    wheelhouse: Callable[[Image], Path], image: Image
) -> None:
    requires = wheel_metadata(wheelhouse(image), image.name).get_all("Requires-Dist") or []
    core = [r for r in requires if r.startswith("etl-core[") and "extra ==" not in r]
    assert core, requires
    extras = set(core[0].split("[", 1)[1].split("]", 1)[0].split(","))
    assert extras == {"s3", "cli"}
    assert ">=0.1" in core[0]
    assert "<0.2" in core[0]
    assert not [r for r in requires if "file:" in r or " @ " in r]


@pytest.mark.slow
def test_observability_wheel_ships_its_alert_rules_and_dashboard(
    wheelhouse: Callable[[Image], Path],
) -> None:
    [wheel] = wheelhouse(BY_NAME["etl-observability"]).glob("etl_observability-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "observability/deploy/prometheus/rules.yml" in names
    assert "observability/deploy/grafana/etl.json" in names


@pytest.mark.slow
@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_image_install_steps_give_working_commands(
    installed: Callable[[Image], Path], image: Image
) -> None:
    """The entry point, the default command, the health check's command, the migrations
    and the worker's libraries all run from the offline install."""
    bin_dir = installed(image)
    docker = Dockerfile.read(image.dockerfile)
    entry = docker.exec_form("ENTRYPOINT")
    assert entry[:2] == ["tini", "--"]
    script = entry[2:]
    helps = [
        [*script, "--help"],
        [*script, *docker.exec_form("CMD"), "--help"],
        ["etl-schema", "--help"],
    ]
    check = docker.healthcheck()
    if check[0] == image.name:
        helps.append([*check[:2], "--help"])
    for command in helps:
        result = run_in(bin_dir, command)
        assert result.returncode == 0, (command, result.stderr)
        assert "usage" in result.stdout.lower(), command
    imports = run_in(bin_dir, ["python", "-c", "import celery, kombu, redis, boto3, django"])
    assert imports.returncode == 0, imports.stderr
    version = run_in(bin_dir, [*script, "--version"])
    assert version.stdout.split() == [image.name, str(docker.arg_default("VERSION"))]


def wait_for_port(port: int, process: BackgroundProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.process.poll() is None, process.log()[-4000:]
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    log = process.log()[-4000:]
    raise AssertionError(f"nothing listens on {port} after {timeout:.0f}s:\n{log}")


@pytest.mark.slow
def test_observability_health_check_passes_while_serve_runs_and_fails_after(
    installed: Callable[[Image], Path], tmp_path: Path
) -> None:
    image = BY_NAME["etl-observability"]
    bin_dir = installed(image)
    docker = Dockerfile.read(image.dockerfile)
    port = str(free_port())
    (tmp_path / "store").mkdir()
    values = {
        "ETL_STORAGE_URL": str(tmp_path / "store"),
        "ETL_CONFIG_DIR": str(EXAMPLE_CONFIG),
        "ETL_SERVE_PORT": port,
        "ETL_LOG_FORMAT": "json",
    }
    command = [str(bin_dir / "etl-observability"), *docker.exec_form("CMD")]
    with BackgroundProcess(
        command, env=image_env(bin_dir, **values), log=tmp_path / "serve.log"
    ) as serve:
        wait_for_port(int(port), serve)
        healthy = run_in(bin_dir, docker.healthcheck(), ETL_SERVE_PORT=port)
        assert healthy.returncode == 0, healthy.stderr
        serve.signal(signal.SIGTERM)  # docker stop
        serve.wait(timeout=60)
    down = run_in(bin_dir, docker.healthcheck(), ETL_SERVE_PORT=port)
    assert down.returncode != 0


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.parametrize("name", ["etl-file-processing", "etl-data-pipeline"])
def test_worker_health_check_passes_while_the_worker_runs_and_fails_after(
    installed: Callable[[Image], Path], tmp_path: Path, name: str
) -> None:
    image = BY_NAME[name]
    bin_dir = installed(image)
    docker = Dockerfile.read(image.dockerfile)
    (tmp_path / "store").mkdir()
    with broker_for("redis") as broker:
        values = {
            **broker.env(),
            "ETL_STORAGE_URL": str(tmp_path / "store"),
            "ETL_CONFIG_DIR": str(EXAMPLE_CONFIG),
            "ETL_LOG_FORMAT": "json",
        }
        command = [str(bin_dir / name), *docker.exec_form("CMD"), "--concurrency", "1"]
        with BackgroundProcess(
            command, env=image_env(bin_dir, **values), log=tmp_path / "worker.log"
        ) as worker:
            worker.wait_for(" ready.", timeout=90)
            healthy = run_in(bin_dir, docker.healthcheck(), **values)
            assert healthy.returncode == 0, healthy.stderr
            assert f"{broker.prefix}{image.module}@" in healthy.stdout
            worker.signal(signal.SIGTERM)  # docker stop: a warm shutdown
            assert worker.wait(timeout=90) == 0, worker.log()[-4000:]
        down = run_in(bin_dir, docker.healthcheck(), **values)
        assert down.returncode == 1, down.stderr
