"""Loading the contracts of a config directory, judged whole, once, at start-up.

:func:`load_contracts` reads every ``<config dir>/datasets/*.toml`` with
:func:`etl_core.config.load_settings_with_sources` (unknown keys are typos and
refused), applies the platform's rules and each validator the lane hands in,
and reports every error of every file at once, each with file, line and field.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from etl_core.config import load_settings_with_sources
from etl_core.config_files import read_toml
from etl_core.contracts.located import load_errors, misnamed_files
from etl_core.contracts.memo import PassMemo
from etl_core.contracts.model import Contract, ContractError, ContractSet
from etl_core.contracts.validate import ContractValidator, validate_contract
from etl_core.errors import ConfigError, FieldError
from etl_core.runtime import ExitCode

__all__ = [
    "DATASETS_DIR",
    "ContractCheck",
    "check_contracts",
    "declared_datasets",
    "error_location",
    "load_contract",
    "load_contracts",
]


DATASETS_DIR = "datasets"
SETTLE_SECONDS = 5.0
"""How long after a file was added to, removed from or renamed in the datasets directory
:func:`declared_datasets` still cannot tell what it declares (files being replaced)."""
_LOCATION = re.compile(r"(?P<file>.+?):(?P<line>\d+)(?::.*)?")


def load_contracts(
    config_dir: str | Path,
    *,
    validators: Iterable[ContractValidator] = (),
    environ: Mapping[str, str] | None = None,
    memo_dir: str | Path | None = None,
) -> ContractSet:
    """Load and validate every ``<config_dir>/datasets/*.toml``.

    Args:
        config_dir: The configuration directory (``ETL_CONFIG_DIR``).
        validators: The lane's engine-backed rules, run on each contract that
            passed the platform's own.
        environ: Where ``env:`` secret references resolve; the process
            environment (at use time) when ``None``. No contract field is ever
            read from the environment.
        memo_dir: Where a validator's passes on unchanged contracts are remembered
            (:mod:`etl_core.contracts.memo`), so later runs skip it; none: every run
            runs every validator.

    Returns:
        The contracts, sorted by file name.

    Raises:
        ContractError: listing every invalid field of every bad file, duplicate
            dataset names and overlapping source/pattern pairs, all at once; or the
            directory has no contracts at all (a misconfiguration, never silence).
    """
    directory = Path(config_dir) / DATASETS_DIR
    if not directory.is_dir():
        raise ContractError(
            f"no dataset contracts: {directory} is not a directory",
            [FieldError("config_dir", "has no datasets/ directory", str(directory))],
        )
    validators = tuple(validators)
    memo = PassMemo(memo_dir) if memo_dir is not None and validators else None
    contracts: list[Contract] = []
    errors: list[FieldError] = misnamed_files(directory)
    files = sorted(directory.glob("*.toml"))
    for path in files:
        try:
            contracts.append(load_contract(path, validators=validators, environ=environ, memo=memo))
        except ContractError as exc:
            errors.extend(exc.errors)
    errors.extend(_clashes(contracts))
    if errors:
        bad = len({error_location(e)[0] for e in errors})
        raise ContractError(
            f"invalid dataset contracts in {directory}: {len(errors)} error"
            f"{'s' if len(errors) > 1 else ''} in {bad} file{'s' if bad > 1 else ''}",
            errors,
        )
    if not files:
        raise ContractError(
            f"no dataset contracts in {directory}: add one TOML file per dataset "
            "(docs/contracts.md describes the format)",
            [FieldError("config_dir", "datasets/ holds no *.toml file", str(directory))],
        )
    return ContractSet(tuple(contracts))


def declared_datasets(config_dir: str | Path) -> frozenset[str] | None:
    """The datasets ``<config_dir>/datasets/*.toml`` declare now: each file's ``dataset``,
    read without judging the rest (what a long-running process, its contracts loaded at
    start, asks before treating a dataset as retired).

    ``None`` when that cannot be told: no such directory, no contract in it, a file that
    names no dataset or cannot be read as a contract (not UTF-8 text, torn while written,
    saved by another editor; no regular file, too large, nested too deeply), or
    one :func:`load_contracts` refuses by its name (``.TOML``: a contract renamed is not
    one removed); or a file added, removed or renamed in the directory less than
    :data:`SETTLE_SECONDS` ago (a deploy replacing the files one by one, an editor saving
    by renaming the old file away first: a file missing for a moment is not a contract
    removed). Nothing is retired on a guess.
    """
    directory = Path(config_dir) / DATASETS_DIR
    try:
        if not directory.is_dir() or misnamed_files(directory):
            return None
        if 0 <= time.time() - directory.stat().st_mtime < SETTLE_SECONDS:
            return None
        declared: set[str] = set()
        for path in sorted(directory.glob("*.toml")):
            name = read_toml(path)[1].get("dataset")
            if not isinstance(name, str):
                return None
            declared.add(name)
    except (OSError, ConfigError):  # no file, not UTF-8, not TOML, nested too deeply...
        return None
    return frozenset(declared) or None


def load_contract(
    path: str | Path,
    *,
    validators: Iterable[ContractValidator] = (),
    environ: Mapping[str, str] | None = None,
    memo: PassMemo | None = None,
) -> Contract:
    """Load and validate one contract file (``memo``: validators' remembered passes).

    Raises:
        ContractError: the file cannot be read or parsed, or a field is invalid;
            each error names the file, line and field.
    """
    path = Path(path)
    try:
        contract, sources = load_settings_with_sources(
            Contract, toml_path=path, env=environ, env_prefix=None
        )
    except ConfigError as exc:
        raise ContractError(f"invalid dataset contract {path}", load_errors(exc, path)) from None
    errors = validate_contract(contract, sources, str(path), validators, memo)
    if errors:
        raise ContractError(f"invalid dataset contract {path}", errors)
    object.__setattr__(contract, "origin", str(path))
    _read_holidays(contract, path)
    return contract


def error_location(error: FieldError) -> tuple[str, int | None]:
    """The file and line (when known) a contract error points at."""
    found = _LOCATION.fullmatch(error.source)
    if found is None:
        return error.source, None
    return found.group("file"), int(found.group("line"))


@dataclass(frozen=True)
class ContractCheck:
    """The verdict on a config directory's contracts, for ``<runtime> contracts check``."""

    config_dir: str
    datasets: tuple[str, ...] = ()
    errors: tuple[FieldError, ...] = ()
    summary: str = ""
    sources: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """Whether every contract loaded and validated."""
        return not self.errors and not self.summary

    def to_json(self) -> str:
        """The verdict as one JSON document (``valid``, ``datasets``, ``errors``)."""
        errors = []
        for error in self.errors:
            file, line = error_location(error)
            errors.append(
                {"file": file, "line": line, "field": error.field, "message": error.message}
            )
        document = {
            "config_dir": self.config_dir,
            "valid": self.valid,
            "datasets": list(self.datasets),
            "sources": list(self.sources),
            "errors": errors,
        }
        if self.summary:
            document["summary"] = self.summary
        return json.dumps(document)

    @property
    def exit_code(self) -> int:
        """0 when valid, 2 (bad configuration) when not."""
        return ExitCode.OK if self.valid else ExitCode.USAGE

    def render(self, *, as_json: bool = False) -> str:
        """The verdict as JSON or as terminal lines."""
        return self.to_json() if as_json else "\n".join(self.lines())

    def lines(self) -> list[str]:
        """The verdict as lines for a terminal: one per error, ``file:line: field: message``."""
        if self.valid:
            count = len(self.datasets)
            lines = [
                f"{count} contract{'s' if count != 1 else ''} valid: {', '.join(self.datasets)}"
            ]
            if self.sources:
                count = len(self.sources)
                plural = "s" if count != 1 else ""
                lines.append(f"{count} API source{plural} valid: {', '.join(self.sources)}")
            return lines
        lines = [self.summary]
        for error in self.errors:
            file, line = error_location(error)
            where = f"{file}:{line}" if line is not None else file
            lines.append(f"{where}: {error.field}: {error.message}")
        return lines


def check_contracts(
    config_dir: str | Path,
    *,
    validators: Iterable[ContractValidator] = (),
    environ: Mapping[str, str] | None = None,
) -> ContractCheck:
    """Load every contract and API source of ``config_dir``, say whether they are valid, never
    raising. Sources are checked against the contracts when those loaded."""
    from etl_core.contracts.sources import load_sources

    summaries: list[str] = []
    errors: list[FieldError] = []
    contracts: ContractSet | None = None
    try:
        contracts = load_contracts(config_dir, validators=validators, environ=environ)
    except ContractError as exc:
        summaries.append(str(exc).splitlines()[0])
        errors.extend(exc.errors)
    try:
        sources = load_sources(config_dir, contracts=contracts, environ=environ).names
    except ContractError as exc:
        summaries.append(str(exc).splitlines()[0])
        errors.extend(exc.errors)
        sources = ()
    if errors or summaries:
        return ContractCheck(str(config_dir), errors=tuple(errors), summary="; ".join(summaries))
    assert contracts is not None
    return ContractCheck(str(config_dir), datasets=contracts.datasets, sources=sources)


def _read_holidays(contract: Contract, path: Path) -> None:
    """Put the dates of the contract's holiday file (validated just before) into it."""
    freshness = contract.freshness
    if freshness.holidays.file is not None:
        holidays = freshness.holidays.read(path.parent)
        object.__setattr__(contract, "freshness", replace(freshness, holidays=holidays))


def _clashes(contracts: Sequence[Contract]) -> list[FieldError]:
    """Duplicate dataset names and overlapping source + pattern pairs between files."""
    errors: list[FieldError] = []
    for index, first in enumerate(contracts):
        for second in contracts[index + 1 :]:
            if first.dataset == second.dataset:
                errors.append(
                    FieldError(
                        "dataset",
                        f"dataset {second.dataset!r} is already declared by {first.origin}",
                        second.origin,
                    )
                )
            if first.file_pattern.overlaps(
                second.file_pattern,
                prefix=first.source.strip("/") + "/",
                other_prefix=second.source.strip("/") + "/",
            ):
                errors.append(
                    FieldError(
                        "pattern",
                        f"source {second.source!r} pattern {second.pattern!r} overlaps "
                        f"{first.pattern!r} (source {first.source!r}) of {first.origin}: "
                        "a landing key could match both",
                        second.origin,
                    )
                )
    return errors
