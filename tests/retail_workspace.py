"""A workspace with the retail example's contracts, drops and reference tables, and the
lanes' console scripts run in it as an operator runs them (stderr piped, logs on auto)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from repo_layout import REPO

from etl_core.testing.scripts import run_script

EXAMPLE = REPO / "examples" / "retail"


@dataclass(frozen=True)
class Workspace:
    """A store, a config dir and a migrated SQLite database under ``root``."""

    root: Path

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.root / 'etl.sqlite3'}"

    def env(self, **extra: str) -> dict[str, str]:
        """The settings every command of the workspace runs with, plus ``extra``."""
        return {
            "ETL_STORAGE_URL": str(self.store),
            "ETL_CONFIG_DIR": str(self.config),
            "ETL_LOG_FORMAT": "auto",  # what an operator gets: JSON because stderr is a pipe
            "RETAIL_POS_PGP_KEY": (EXAMPLE / "keys/retail-example-secret.asc").read_text(),
            **extra,
        }

    def run(self, tool: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """Run console script ``tool`` with ``args`` in the workspace."""
        return run_script(tool, *args, cwd=self.root, env=self.env(**extra))


def retail_workspace(root: Path, *, migrate: bool = True) -> Workspace:
    """Copy the retail example's drops into ``landing/``, its reference tables into
    ``reference/`` and its contracts into ``config/``; migrate the database."""
    workspace = Workspace(root)
    shutil.copytree(EXAMPLE / "landing", workspace.store / "landing")
    shutil.copytree(EXAMPLE / "reference", workspace.store / "reference")
    shutil.copytree(EXAMPLE / "config", workspace.config)
    if migrate:
        done = run_script(
            "etl-schema", "migrate", cwd=root, env={"DATABASE_URL": workspace.database_url}
        )
        assert done.returncode == 0, done.stderr
    return workspace


def stderr_problems(stderr: str) -> list[str]:
    """Each stderr line that is not one JSON object carrying ``run_id`` and ``lane``."""
    problems = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            problems.append(f"not JSON: {line[:200]!r}")
            continue
        if not isinstance(record, dict):
            problems.append(f"not a JSON object: {line[:200]!r}")
            continue
        missing = [name for name in ("run_id", "lane") if not record.get(name)]
        if missing:
            problems.append(f"no {', '.join(missing)}: {line[:200]!r}")
    return problems
