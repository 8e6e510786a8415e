"""The compose stack, checked without a Docker engine: the resolved file (``docker-compose
config`` with the committed ``.env``), each platform service's command and environment run
against the installed runtimes, and the monitoring configuration it mounts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_file import (
    BY_NAME,
    COMPOSE,
    ENV_FILE,
    argv,
    commands,
    docker_compose,
    dotenv,
    platform_services,
    services,
)
from dockerfiles import IMAGES
from repo_layout import PACKAGE_DIRS, REPO

from etl_core.testing.services import service_unavailable

BIN = Path(sys.executable).parent
AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
"""Not platform settings: boto3 reads them itself (the S3 store's credentials)."""
SECRET_WORDS = ("PASSWORD", "TOKEN", "KEY", "SECRET")


def test_compose_config_is_valid_with_the_committed_env_alone() -> None:
    result = docker_compose("config", "-q")
    assert result.returncode == 0, result.stderr
    assert set(services()) >= {
        "postgres",
        "redis",
        "minio",
        "create-bucket",
        "migrate",
        "file-processing-worker",
        "file-processing-scheduler",
        "data-pipeline-worker",
        "data-pipeline-scheduler",
        "observability-worker",
        "observability-scheduler",
        "observability",
        "prometheus",
        "grafana",
        "example",
    }


def test_without_the_env_file_compose_names_the_missing_variable(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in dotenv()}
    result = docker_compose("--env-file", str(empty), "config", "-q", env=env)
    assert result.returncode != 0
    assert re.search(r"set [A-Z_]+ \(compose/\.env\)", result.stderr), result.stderr


def test_env_file_says_it_is_for_development_only() -> None:
    assert ENV_FILE.read_text().startswith("# DEVELOPMENT ONLY.")


def test_the_compose_file_holds_no_secret() -> None:
    text = (COMPOSE / "docker-compose.yml").read_text()
    secrets = {k: v for k, v in dotenv().items() if any(w in k for w in SECRET_WORDS)}
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "RETAIL_POS_PGP_KEY"} <= set(secrets)
    for name, value in secrets.items():
        assert value.strip(), name
        assert value.strip().splitlines()[0] not in text, f"{name}'s value is in the compose file"


def test_the_env_file_holds_the_example_key_unchanged() -> None:
    key = (REPO / "examples/retail/keys/retail-example-secret.asc").read_text()
    assert dotenv()["RETAIL_POS_PGP_KEY"].strip() == key.strip()


def test_every_published_port_is_bound_to_localhost() -> None:
    published = [(name, str(port)) for name, s in services().items() for port in s.get("ports", [])]
    assert published
    for name, port in published:
        assert port.startswith("127.0.0.1:"), (name, port)


def test_every_health_condition_waits_on_a_service_with_a_health_check() -> None:
    images = {s.name: s for s in IMAGES}
    for name, service in services().items():
        for target, rule in (service.get("depends_on") or {}).items():
            if rule.get("condition") != "service_healthy":
                continue
            other = services()[target]
            check = other.get("healthcheck", {})
            image = str(other.get("image", "")).split(":", 1)[0]
            own = "test" in check and not check.get("disable")
            inherited = image in images and not check.get("disable")
            assert own or inherited, f"{name} waits for {target} to be healthy; it has no check"


def test_platform_services_wait_for_the_database_the_bucket_and_the_broker() -> None:
    for name, (service, _) in platform_services().items():
        if name in {"migrate", "example"}:
            continue
        rules = {k: v["condition"] for k, v in service["depends_on"].items()}
        assert rules["migrate"] == "service_completed_successfully", name
        assert rules["create-bucket"] == "service_completed_successfully", name
        assert rules["redis"] == "service_healthy", name


def test_a_worker_and_a_scheduler_per_runtime() -> None:
    running = {(image.name, tuple(argv(s, image))) for s, image in platform_services().values()}
    for image in IMAGES:
        assert (image.name, (image.name, "worker")) in running
        assert (image.name, (image.name, "schedule")) in running
    assert ("etl-observability", ("etl-observability", "serve")) in running
    assert ("etl-data-pipeline", ("etl-schema", "migrate")) in running


@pytest.mark.parametrize("service", sorted(platform_services()), ids=str)
def test_service_command_is_a_real_command_of_the_installed_runtime(service: str) -> None:
    """Each program a platform service starts answers ``--help`` (exit 0) here, as the
    runtimes are installed; a Python script must be the repository's, mounted in."""
    config, image = platform_services()[service]
    for command in commands(config, image):
        if command[0] == "python":
            script = command[1]
            assert mounted_from_repository(config, script) == REPO / script, (service, script)
            program = [sys.executable, str(REPO / script)]
            rest: list[str] = []
        else:
            program, rest = [str(BIN / command[0])], command[1:]
        arguments = [a for a in rest if not a.startswith("-")][:2]  # subcommands, no options
        result = subprocess.run(
            [*program, *arguments, "--help"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (service, command, result.stdout + result.stderr)
        assert "usage" in result.stdout.lower(), (service, command)


def mounted_from_repository(service: dict[str, Any], path: str) -> Path | None:
    """Where, on this machine, the service finds ``path`` (relative to its working dir)."""
    inside = Path(service.get("working_dir", "/")) / path
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if inside.is_relative_to(target) and source.startswith("/"):
            return Path(source) / inside.relative_to(target)
    return None


def contract_secret_references() -> set[str]:
    """Every ``env:NAME`` the example's contracts refer to (the secrets they need)."""
    names: set[str] = set()
    for path in (REPO / "examples/retail/config").rglob("*.toml"):
        names |= set(re.findall(r'"env:([A-Za-z_][A-Za-z0-9_]*)"', path.read_text()))
    return names


@pytest.mark.parametrize("service", sorted(platform_services()), ids=str)
def test_every_variable_a_service_sets_is_a_setting_its_runtime_reads(service: str) -> None:
    """``config show`` with the service's environment: every ETL_* (and DATABASE_URL) it sets
    is read from the environment and valid; anything else is a secret a contract refers
    to, or boto3's credentials."""
    config, image = platform_services()[service]
    environment = {k: str(v) for k, v in (config.get("environment") or {}).items()}
    settings_vars = {k for k in environment if k.startswith("ETL_") or k == "DATABASE_URL"}
    others = set(environment) - settings_vars - AWS_CREDENTIALS
    assert others <= contract_secret_references() | {"RETAIL_FOOTFALL_API_TOKEN"}, others
    base = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    result = subprocess.run(
        [str(BIN / image.name), "config", "show", "--json"],
        env={**base, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sources = {row["source"] for row in json.loads(result.stdout)["settings"]}
    for name in settings_vars:
        assert f"env {name}" in sources, f"{service} sets {name}, which {image.name} does not read"


def test_the_example_service_points_the_api_source_at_itself() -> None:
    example = services()["example"]
    line = " ".join(argv(example, BY_NAME["etl-data-pipeline"]))
    assert "--api-url http://example:8000 --api-schedule '*/2 * * * *'" in line
    assert "examples/retail/api.py --host 0.0.0.0 --port 8000" in line
    assert "config:/app/config:rw" in example["volumes"]
    for name, (service, _) in platform_services().items():
        if name not in {"example", "migrate"}:  # migrate reads no contract
            assert "config:/app/config:ro" in service["volumes"], name


def test_prometheus_config_is_valid_with_the_shipped_rules(tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        service_unavailable("promtool", "install the Debian package prometheus")
    prometheus = services()["prometheus"]
    mounts = dict(reversed(v.split(":")[:2]) for v in prometheus["volumes"] if v.startswith("/"))
    shutil.copy(mounts["/etc/prometheus/prometheus.yml"], tmp_path / "prometheus.yml")
    (tmp_path / "rules").mkdir()
    shipped = REPO / "packages/observability/src/observability/deploy/prometheus/rules.yml"
    assert Path(mounts["/etc/prometheus/rules/etl.yml"]) == shipped
    shutil.copy(shipped, tmp_path / "rules/etl.yml")
    result = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout
    scraped = yaml.safe_load((tmp_path / "prometheus.yml").read_text())["scrape_configs"]
    targets = {t for job in scraped for c in job["static_configs"] for t in c["targets"]}
    serve = services()["observability"]["environment"]
    assert f"observability:{serve['ETL_SERVE_PORT']}" in targets


def test_grafana_provisions_the_shipped_dashboard_on_prometheus() -> None:
    grafana = services()["grafana"]
    mounts = dict(reversed(v.split(":")[:2]) for v in grafana["volumes"] if v.startswith("/"))
    provisioning = Path(mounts["/etc/grafana/provisioning"])
    [provider] = yaml.safe_load((provisioning / "dashboards/etl.yml").read_text())["providers"]
    dashboards = Path(mounts[provider["options"]["path"]])
    assert dashboards == REPO / "packages/observability/src/observability/deploy/grafana"
    assert json.loads((dashboards / "etl.json").read_text())["uid"] == "etl-platform"
    [source] = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    assert (source["type"], source["url"], source["isDefault"]) == (
        "prometheus",
        "http://prometheus:9090",
        True,
    )


def test_every_bind_mount_exists_in_the_repository() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("/"):
                assert Path(source).exists(), (name, source)
                assert Path(source).is_relative_to(REPO), (name, source)


def test_observability_is_healthy_when_ready_and_workers_when_they_answer() -> None:
    serve = services()["observability"]
    # the address serve reads from its settings, /readyz there
    assert serve["healthcheck"]["test"][1:4] == ["etl-observability", "serve-ping", "--ready"]
    worker = services()["observability-worker"]
    assert worker["healthcheck"]["test"][1:3] == ["etl-observability", "ping"]


def test_image_versions_follow_the_packages() -> None:
    version = dotenv()["ETL_VERSION"]
    for image in IMAGES:
        pyproject = tomllib.loads((PACKAGE_DIRS[image.name] / "pyproject.toml").read_text())
        assert pyproject["project"]["version"] == version
    for service, image in platform_services().values():
        assert service["image"] == f"{image.name}:{version}"
        assert service["build"]["args"]["VERSION"] == version
