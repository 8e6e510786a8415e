"""What the images declare, read from their Dockerfiles, for the checks that run without Docker.

The tests take the install steps, the entry point, the default command and the health
check from here instead of repeating them, so what they prove is what the images do.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from repo_layout import REPO

__all__ = ["IMAGES", "DockerIgnore", "Dockerfile", "Image"]


@dataclass(frozen=True)
class Image:
    """One runtime's image: its name, the package it ships and its Dockerfile."""

    name: str
    module: str
    dockerfile: Path


IMAGES = (
    Image("etl-file-processing", "file_processing", REPO / "docker/file-processing.Dockerfile"),
    Image("etl-data-pipeline", "data_pipeline", REPO / "docker/data-pipeline.Dockerfile"),
    Image("etl-observability", "observability", REPO / "docker/observability.Dockerfile"),
)
"""The images as the specification names them (image → Dockerfile)."""


@dataclass(frozen=True)
class Dockerfile:
    """A Dockerfile's instructions (continuation lines joined, comments dropped)."""

    path: Path
    instructions: tuple[tuple[str, str], ...]

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        instructions: list[tuple[str, str]] = []
        pending = ""
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            whole = pending + stripped
            pending = ""
            keyword, _, arguments = whole.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
        return cls(path, tuple(instructions))

    def all(self, keyword: str) -> list[str]:
        """The arguments of every ``keyword`` instruction, in order."""
        return [arguments for name, arguments in self.instructions if name == keyword]

    def last(self, keyword: str) -> str:
        """The arguments of the last ``keyword`` instruction (the one that applies)."""
        found = self.all(keyword)
        assert found, f"{self.path.name} has no {keyword}"
        return found[-1]

    def exec_form(self, keyword: str) -> list[str]:
        """The JSON (exec form) argument list of the last ``keyword`` (ENTRYPOINT, CMD)."""
        value = json.loads(self.last(keyword))
        assert isinstance(value, list), f"{self.path.name}: {keyword} is not in exec form"
        return [str(v) for v in value]

    def healthcheck(self) -> list[str]:
        """The health check's command (``HEALTHCHECK [options] CMD [...]``), exec form."""
        _options, command = self.last("HEALTHCHECK").split(" CMD ", 1)
        value = json.loads(command)
        assert isinstance(value, list), f"{self.path.name}: HEALTHCHECK CMD is not in exec form"
        return [str(v) for v in value]

    def healthcheck_options(self) -> dict[str, str]:
        options, _ = self.last("HEALTHCHECK").split(" CMD ", 1)
        return dict(re.findall(r"--([a-z-]+)=(\S+)", options))

    def wheels(self, action: str) -> list[str]:
        """The arguments after ``wheels.sh <action> /wheels`` in the RUN that calls it."""
        calls = [
            run.split(f"wheels.sh {action} /wheels", 1)[1]
            for run in self.all("RUN")
            if f"wheels.sh {action} /wheels" in run
        ]
        assert len(calls) == 1, f"{self.path.name}: {len(calls)} 'wheels.sh {action}' steps"
        return shlex.split(calls[0])

    def arg_default(self, name: str) -> str | None:
        """The default of ``ARG name=default`` (the last one that declares it)."""
        for arguments in reversed(self.all("ARG")):
            key, _, default = arguments.partition("=")
            if key == name:
                return default or None
        return None

    def env(self) -> dict[str, str]:
        """Every ``ENV key=value`` pair the image sets (the last value of each)."""
        pairs: dict[str, str] = {}
        for arguments in self.all("ENV"):
            for token in shlex.split(arguments):
                key, _, value = token.partition("=")
                pairs[key] = value
        return pairs

    def labels(self) -> dict[str, str]:
        """Every ``LABEL key="value"`` pair."""
        pairs: dict[str, str] = {}
        for arguments in self.all("LABEL"):
            for token in shlex.split(arguments):
                key, _, value = token.partition("=")
                pairs[key] = value
        return pairs

    def copied_sources(self) -> list[str]:
        """The build-context paths ``COPY`` takes (not those of ``COPY --from``)."""
        sources: list[str] = []
        for arguments in self.all("COPY"):
            if "--from=" in arguments:
                continue
            *paths, _target = shlex.split(arguments)
            sources += [p for p in paths if not p.startswith("--")]
        return sources


class DockerIgnore:
    """The build context's ``.dockerignore``, matched as Docker does: each pattern against
    a path and its parent directories, ``*``/``?`` within one path segment, ``**`` across
    segments, and the last matching pattern deciding (``!`` keeps a path)."""

    def __init__(self, patterns: list[tuple[bool, re.Pattern[str]]]) -> None:
        self.patterns = patterns

    @classmethod
    def read(cls, path: Path) -> DockerIgnore:
        patterns: list[tuple[bool, re.Pattern[str]]] = []
        for line in path.read_text().splitlines():
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            keep = text.startswith("!")
            text = posixpath.normpath(text.removeprefix("!").strip()).lstrip("/")
            patterns.append((keep, re.compile(_translate(text))))
        return cls(patterns)

    def excluded(self, relative: str) -> bool:
        """Whether the file at ``relative`` (to the context) is left out of the context."""
        parts = relative.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for keep, pattern in self.patterns:
            if any(pattern.fullmatch(candidate) for candidate in candidates):
                excluded = not keep
        return excluded


def _translate(pattern: str) -> str:
    """A ``.dockerignore`` pattern as a regular expression over ``/``-separated paths."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
            continue
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        if char == "[":
            end = pattern.index("]", i)
            out, i = out + "[" + pattern[i + 1 : end] + "]", end + 1
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
        i += 1
    return out
