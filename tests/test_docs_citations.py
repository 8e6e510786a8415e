"""The project cites its own architecture document, never a design file it does not ship."""

from __future__ import annotations

import re
import subprocess

from repo_layout import REPO

ARCHITECTURE = REPO / "docs/architecture.md"
CITATION = re.compile(r"architecture(?:\.md)?(?:\]\([^)]*\))? sections? (\d+)(?: and (\d+))?")


def tracked_text_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    suffixes = (".py", ".md", ".toml", ".yml", ".yaml", ".sh", ".Dockerfile", ".html")
    return [path for path in listed if path.endswith(suffixes) or path == "Makefile"]


def test_nothing_cites_a_design_file_outside_the_repository() -> None:
    citing = [
        path
        for path in tracked_text_files()
        if "DESIGN.md" in (REPO / path).read_text(errors="replace")
        and path != "tests/test_docs_citations.py"
    ]
    assert citing == []


def test_every_cited_architecture_section_exists() -> None:
    sections = set(re.findall(r"^## (\d+)\. ", ARCHITECTURE.read_text(), flags=re.MULTILINE))
    assert sections == {str(n) for n in range(1, 9)}
    cited: dict[str, set[str]] = {}
    for path in tracked_text_files():
        for match in CITATION.finditer((REPO / path).read_text(errors="replace")):
            cited.setdefault(path, set()).update(n for n in match.groups() if n)
    assert cited, "no file cites docs/architecture.md"
    for path, numbers in cited.items():
        assert numbers <= sections, (path, numbers - sections)
