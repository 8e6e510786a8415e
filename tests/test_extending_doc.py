"""docs/extending.md stays true: its examples are still the code they were copied from, the
files it points to exist, and the interfaces and registries it names import."""

from __future__ import annotations

import importlib
import re
from dataclasses import fields

import pytest
from repo_layout import REPO

DOC = REPO / "docs/extending.md"
SNIPPET = re.compile(r"^<!-- from: (\S+) -->\n```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
REPO_PATH = re.compile(r"`((?:packages|tests)/[\w/.]+\.py)(?:::\w+)?`")
DOTTED = re.compile(r"`((?:etl_core|file_processing|data_pipeline|observability)(?:\.\w+)+)`")
PACKAGE_DIRS = {
    "etl_core": "packages/etl_core/src",
    "file_processing": "packages/file_processing/src",
    "data_pipeline": "packages/data_pipeline/src",
    "observability": "packages/observability/src",
}


def snippets() -> list[tuple[str, str]]:
    return SNIPPET.findall(DOC.read_text())


def test_the_doc_has_an_example_per_extension_point() -> None:
    sections = re.split(r"^## ", DOC.read_text(), flags=re.MULTILINE)[1:-1]  # not "Keeping..."

    without = [s.splitlines()[0] for s in sections if not SNIPPET.search(s)]
    assert len(sections) >= 8
    assert without == [], "sections without an example copied from a real module"


def test_every_from_marker_is_followed_by_an_example_the_tests_check() -> None:
    """A marker the pattern misses (a blank line before the fence, another language) would
    leave its example unchecked, silently."""
    markers = re.findall(r"^<!-- from:", DOC.read_text(), flags=re.MULTILINE)

    assert len(markers) == len(snippets())


@pytest.mark.parametrize(("path", "code"), snippets(), ids=lambda value: str(value)[:60])
def test_each_example_is_still_line_for_line_in_the_file_it_names(path: str, code: str) -> None:
    source = (REPO / path).read_text()

    assert code in source, f"the example from {path} in docs/extending.md no longer matches it"
    assert 8 <= code.count("\n") <= 30, f"the example from {path} should be 8-30 lines"


def test_every_file_the_doc_names_exists() -> None:
    text = DOC.read_text()
    named = set(REPO_PATH.findall(text)) | {path for path, _ in snippets()}
    missing = sorted(
        path
        for path in named
        if not (REPO / path).is_file()
        and not any((REPO / "packages" / pkg / path).is_file() for pkg in PACKAGE_DIRS)
    )
    assert missing == []


@pytest.mark.parametrize("dotted", sorted(set(DOTTED.findall(DOC.read_text()))))
def test_every_interface_and_registry_the_doc_names_imports(dotted: str) -> None:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return
    pytest.fail(f"{dotted} does not import")


def test_the_archive_recipe_names_every_field_of_the_layer_a_format_reads() -> None:
    from file_processing.archives import Layer

    section = DOC.read_text().split("\n## Archive formats\n", 1)[1].split("\n## ", 1)[0]

    unnamed = [field.name for field in fields(Layer) if f"`{field.name}`" not in section]
    assert "`members(layer)`" in section
    assert unnamed == [], "docs/extending.md's archive recipe should say what these are"


@pytest.mark.parametrize("page", ["README.md", "docs/architecture.md"])
def test_the_doc_is_linked_from_the_readme_and_the_architecture(page: str) -> None:
    assert "extending.md" in (REPO / page).read_text()
