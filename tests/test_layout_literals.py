"""No runtime spells the object-store layout or parses a contract: both live in etl_core.

Keys come from etl_core.layout (docs/architecture.md section 3), contracts from etl_core.contracts.

Every string literal in the runtimes' source is checked, f-string pieces included;
docstrings and comments may describe the layout in prose.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from repo_layout import REPO, RUNTIMES

ZONES = ("landing", "validated", "quarantine", "curated", "raw", "_state")
# Zone names that are also a runtime's own words, not key parts: file_processing's
# outcome status "validated", and its "quarantine" command group and timing stage.
VOCABULARY = {"file_processing": {"validated", "quarantine"}}
SIDECARS = (".quality.json", ".quarantine.json", ".rejected.csv", "_manifest.json")
DT_FOLDER = re.compile(r"(?:^|/)dt=")


def layout_problem(text: str, runtime: str) -> str | None:
    """What ``text``, a string literal of ``runtime``, spells of the layout, if anything."""
    for zone in ZONES:
        if text.startswith(f"{zone}/"):
            return f"the zone prefix {zone}/"
    if text in ZONES and text not in VOCABULARY.get(runtime, set()):
        return f"the zone name {text!r}"
    if DT_FOLDER.search(text):
        return "a dt= partition folder"
    for suffix in SIDECARS:
        if suffix in text:
            return f"the layout name {suffix}"
    return None


def layout_literals(source: str, runtime: str) -> list[tuple[int, str, str]]:
    """``(line, problem, literal)`` for each string literal of ``source`` spelling the layout."""
    tree = ast.parse(source)
    prose = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    pieces: dict[int, int] = {}  # f-string piece -> line of its f-string
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            pieces.update((id(value), node.lineno) for value in node.values)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            continue
        if id(node) in prose:
            continue
        problem = layout_problem(node.value, runtime)
        if problem is not None:
            found.append((pieces.get(id(node), node.lineno), problem, node.value))
    return sorted(found)


def runtime_sources() -> list[tuple[str, Path]]:
    return [
        (runtime, path)
        for runtime in RUNTIMES
        for path in sorted((REPO / "packages" / runtime / "src").rglob("*.py"))
    ]


def test_no_runtime_spells_a_zone_prefix_a_partition_folder_or_a_sidecar() -> None:
    sources = runtime_sources()
    assert len(sources) > 20, "the runtimes' sources were not found"
    problems = [
        f"{path.relative_to(REPO)}:{line}: {problem} in {text!r}; use etl_core.layout"
        for runtime, path in sources
        for line, problem, text in layout_literals(path.read_text(encoding="utf-8"), runtime)
    ]
    assert not problems, "\n".join(problems)


def test_the_check_finds_literals_and_f_string_pieces_but_not_prose() -> None:
    source = '''
"""Module docstring: validated/<dataset>/dt=<date>/<file>.quality.json."""
PREFIX = "landing/"
ZONES = ("curated", "raw")


def key(dataset, day, name):
    """Docstring: quarantine/<dataset>/dt=<day>/<name>."""
    # comment: _state/<lane>/
    message = f"dataset {dataset!r}, partition dt={day}"  # prose, not a key
    sidecar = name + ".rejected.csv"
    return f"{PREFIX}{dataset}/dt={day}/{name}" + f"x/{name}_manifest.json"
'''
    found = layout_literals(source, "data_pipeline")
    assert [(line, problem) for line, problem, _ in found] == [
        (3, "the zone prefix landing/"),
        (4, "the zone name 'curated'"),
        (4, "the zone name 'raw'"),
        (11, "the layout name .rejected.csv"),
        (12, "a dt= partition folder"),
        (12, "the layout name _manifest.json"),
    ]


def test_a_runtimes_own_words_are_not_zone_names_only_in_that_runtime() -> None:
    source = 'STATUS = "validated"\n'
    assert layout_literals(source, "file_processing") == []
    assert layout_literals(source, "observability") == [
        (1, "the zone name 'validated'", "validated")
    ]


def test_no_runtime_parses_toml() -> None:
    importers = []
    for runtime, path in runtime_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(name.split(".")[0] in ("tomllib", "tomli", "toml") for name in names):
                importers.append(f"{path.relative_to(REPO)}:{node.lineno} ({runtime})")
    assert not importers, "read contracts through etl_core.contracts: " + ", ".join(importers)
