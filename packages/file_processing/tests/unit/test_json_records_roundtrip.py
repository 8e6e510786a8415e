"""The streaming JSON reader loses nothing: random documents, cut at random chunk sizes,
give back every record exactly (seeded, bounded generation)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from file_processing import json_records
from file_processing.json_records import scan_json

_TEXT = ["", "a", "é", "€", "😀", '"', "\\", "\n", "\t", "]", "}", ",", "[{", "\u2028", " "]


def _value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.randint(-(2**63), 2**63)
    if kind == 3:
        return rng.uniform(-1e12, 1e12)
    if kind == 4:
        return "".join(rng.choice(_TEXT) for _ in range(rng.randrange(6)))
    if kind == 5:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return _record(rng, depth + 1)


def _record(rng: random.Random, depth: int = 1) -> dict[str, Any]:
    keys = {"".join(rng.choice(_TEXT) for _ in range(rng.randrange(1, 4))) for _ in range(4)}
    return {key: _value(rng, depth) for key in keys}


def _clean_records(path: Path) -> list[Any]:
    """The clean copy's records: one per "\n"-ended line (U+2028 is text, not a line end)."""
    text = path.read_text(encoding="utf-8")
    assert not text or text.endswith("\n")
    return [json.loads(line) for line in text.split("\n")[:-1]]


@pytest.mark.parametrize("seed", range(40))
def test_every_record_of_a_random_array_comes_back_whatever_the_chunk_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(json_records, "_CHUNK", rng.choice([1, 2, 3, 7, 64, 1 << 20]))
    records = [_record(rng) for _ in range(rng.randrange(0, 30))]
    indent = rng.choice([None, 0, 1, 4])
    text = json.dumps(records, indent=indent, ensure_ascii=rng.random() < 0.5)
    if rng.random() < 0.3:
        text = "\ufeff" + text.replace("\n", "\r\n") + "\r\n"
    path = tmp_path / "doc.json"
    path.write_text(text, encoding="utf-8")
    found = scan_json(path, array=True, encoding="utf-8", work_dir=tmp_path)
    assert found.fatal is None, found.fatal
    assert (found.records, found.malformed) == (len(records), 0)
    assert _clean_records(found.clean_path) == records


@pytest.mark.parametrize("seed", range(20))
def test_every_line_of_random_json_lines_comes_back_and_a_bad_one_is_counted(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    records = [_record(rng) for _ in range(rng.randrange(1, 30))]
    bad_at = rng.randrange(len(records) + 1)
    lines = [json.dumps(record, ensure_ascii=rng.random() < 0.5) for record in records]
    lines.insert(bad_at, '{"broken": ')
    ending = rng.choice(["\n", "\r\n"])
    path = tmp_path / "doc.jsonl"
    path.write_text(ending.join(lines) + ending, encoding="utf-8", newline="")
    found = scan_json(path, array=False, encoding="utf-8", work_dir=tmp_path)
    assert (found.records, found.malformed) == (len(records) + 1, 1)
    assert found.samples[0].record == bad_at + 1
    assert _clean_records(found.clean_path) == records
