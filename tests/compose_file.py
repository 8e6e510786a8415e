"""The compose stack as ``docker-compose config`` resolves it with the committed .env, and
what each platform service runs, for the checks that run without a Docker engine."""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from dockerfiles import IMAGES, Dockerfile, Image
from repo_layout import REPO

from etl_core.testing.services import service_unavailable

__all__ = [
    "BY_NAME",
    "COMPOSE",
    "ENV_FILE",
    "argv",
    "commands",
    "docker_compose",
    "dotenv",
    "platform_services",
    "resolved",
    "services",
]

COMPOSE = REPO / "compose"
ENV_FILE = COMPOSE / ".env"
BY_NAME = {image.name: image for image in IMAGES}


def docker_compose(
    *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker-compose") is None:
        service_unavailable("docker-compose", "install the Debian package docker-compose")
    clean = {k: v for k, v in os.environ.items() if k not in dotenv()}  # the .env alone
    return subprocess.run(
        ["docker-compose", *arguments],
        cwd=COMPOSE,
        env=clean if env is None else env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@functools.cache
def dotenv() -> dict[str, str]:
    """compose/.env as compose reads it: resolved by ``docker-compose config`` for a probe
    service that sets each of its variables (no .env parser of ours)."""
    names = re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_FILE.read_text(), flags=re.MULTILINE)
    environment = {name: f"${{{name}}}" for name in names}
    probe = {"services": {"probe": {"image": "scratch", "environment": environment}}}
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "docker-compose.yml").write_text(yaml.safe_dump(probe))
        result = subprocess.run(
            ["docker-compose", "--env-file", str(ENV_FILE), "config"],
            cwd=scratch,
            env={k: v for k, v in os.environ.items() if k not in names},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]["probe"]["environment"]
    return {name: str(resolved[name]) for name in names}


@functools.cache
def resolved() -> dict[str, Any]:
    """The compose file as ``docker-compose config`` resolves it with the committed .env."""
    result = docker_compose("config")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = resolved()["services"]
    return found


def platform_services() -> dict[str, tuple[dict[str, Any], Image]]:
    """The services running one of the platform's images, with that image."""
    chosen = {}
    for name, service in services().items():
        image = str(service.get("image", "")).split(":", 1)[0]
        if image in BY_NAME:
            chosen[name] = (service, BY_NAME[image])
    return chosen


def argv(service: dict[str, Any], image: Image) -> list[str]:
    """What the container runs: compose's entrypoint and command over the image's
    (an entrypoint set in compose drops the image's CMD, as Docker does)."""
    docker = Dockerfile.read(image.dockerfile)
    if "entrypoint" in service:
        entry, command = list(service["entrypoint"]), list(service.get("command") or [])
    else:
        entry = docker.exec_form("ENTRYPOINT")
        command = list(service.get("command") or docker.exec_form("CMD"))
    whole = entry + command
    return whole[2:] if whole[:2] == ["tini", "--"] else whole


def commands(service: dict[str, Any], image: Image) -> list[list[str]]:
    """The programs a service starts: its argv, or each step of an ``sh -c`` line."""
    whole = argv(service, image)
    if whole[:2] != ["sh", "-c"]:
        return [whole]
    steps = [shlex.split(step) for step in whole[2].split("&&")]
    return [step[1:] if step[0] == "exec" else step for step in steps]
