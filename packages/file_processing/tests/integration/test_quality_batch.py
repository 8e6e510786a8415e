"""Small files checked together in one engine query decide exactly as they would alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etl_core.contracts import Contract, load_contract
from file_processing.engine import QualityEngine
from file_processing.quality import QualityResult, validate_batch, validate_file

MIB = 1024 * 1024

# Each file its own case: clean ones and every way a member can fall out of the batch.
FILES = {
    "clean_a.csv": "id,qty,note\n1,2,ok\n2,3,ok\n",
    "clean_b.csv": "\ufeffid,qty,note\n7,1,ok\n",  # a byte-order mark
    "quoted.csv": 'id,qty,note\n3,4,"a, ""quoted"" note"\n4,5,"two\nlines"\n',
    "bad_type.csv": "id,qty,note\n1,x,ok\n2,3,ok\n",  # type:qty fails one row of two
    "out_of_range.csv": "id,qty,note\n1,0,ok\n",  # range:qty
    "duplicate.csv": "id,qty,note\n5,1,ok\n5,2,ok\n6,1,ok\n7,1,ok\n8,1,ok\n",  # unique:id
    "malformed.csv": "id,qty,note\n1,2,ok\n2,3,ok,surplus\n",
    "unterminated.csv": 'id,qty,note\n1,2,"open\n',
    "header_only.csv": "id,qty,note\n",
    "reordered.csv": "qty,id,note\n2,9,ok\n",
    "missing_column.csv": "id,qty\n1,2\n",
    "cr_only.csv": "id,qty,note\r1,2,ok\r",
    "not_utf8.csv": "id,qty,note\n1,2,caf\xe9\n",
}


def contract(tmp_path: Path) -> Contract:
    path = tmp_path / "contract.toml"
    path.write_text(
        'dataset = "d"\nsource = "v"\npattern = "d_{date:%Y%m%d}.csv"\n'
        "max_rejected_fraction = '50%'\n"
        '[[columns]]\nname = "id"\ntype = "int"\nrequired = true\n'
        '[[columns]]\nname = "qty"\ntype = "int"\n'
        '[[columns]]\nname = "note"\n'
        '[[checks]]\nkind = "range"\ncolumn = "qty"\nmin = 1\n'
        '[[checks]]\nkind = "unique"\ncolumn = "id"\n'
    )
    return load_contract(path, environ={})


def lay_out(root: Path, names: list[str]) -> list[Path]:
    paths = []
    for index, name in enumerate(names):
        folder = root / f"in-{index}"
        folder.mkdir(parents=True)
        path = folder / name
        data = FILES[name]
        path.write_bytes(data.encode("latin-1" if name == "not_utf8.csv" else "utf-8"))
        paths.append(path)
    return paths


def comparable(result: QualityResult, root: Path) -> dict[str, Any]:
    """The report and outputs, without timings or where the run kept its files."""
    report = result.report.to_dict()
    report.pop("duration_seconds")
    outputs = [
        None if path is None else (path.relative_to(root).parts[-1], path.read_bytes())
        for path in (result.valid_path, result.rejected_path)
    ]
    return {"report": report, "outputs": outputs}


def check_alone(tmp_path: Path, names: list[str], rules: Contract) -> list[dict[str, Any]]:
    root = tmp_path / "alone"
    found = []
    with QualityEngine(root.parent, memory_limit=64 * MIB) as engine:
        for index, path in enumerate(lay_out(root, names)):
            out = root / f"out-{index}"
            result = validate_file(path, rules, out_dir=out, name=path.name, engine=engine)
            found.append(comparable(result, root))
    return found


def check_together(tmp_path: Path, names: list[str], rules: Contract) -> list[dict[str, Any]]:
    root = tmp_path / "together"
    paths = lay_out(root, names)
    with QualityEngine(root.parent, memory_limit=64 * MIB) as engine:
        results = validate_batch(
            paths,
            rules,
            out_dirs=[root / f"out-{i}" for i in range(len(paths))],
            names=[path.name for path in paths],
            engine=engine,
        )
    return [comparable(result, root) for result in results]


def test_a_batch_decides_every_file_as_it_would_alone(tmp_path: Path) -> None:
    rules = contract(tmp_path)
    names = list(FILES)
    alone = check_alone(tmp_path, names, rules)
    together = check_together(tmp_path, names, rules)
    for name, one, other in zip(names, alone, together, strict=True):
        assert other == one, name
    outcomes = {name: one["report"]["outcome"] for name, one in zip(names, alone, strict=True)}
    assert outcomes["clean_a.csv"] == outcomes["clean_b.csv"] == "pass"
    assert outcomes["unterminated.csv"] == outcomes["missing_column.csv"] == "fail"


@pytest.fixture
def analysed_alone(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the engine analysed on their own (outside a batch query)."""
    from file_processing import quality

    alone: list[str] = []
    engine_pass = quality._Analysis.engine_pass

    def counted(self: Any, *args: Any, **kwargs: Any) -> QualityResult:
        alone.append(self.path.name)
        return engine_pass(self, *args, **kwargs)

    monkeypatch.setattr(quality._Analysis, "engine_pass", counted)
    return alone


@pytest.mark.parametrize("name", ["bad_type.csv", "malformed.csv", "duplicate.csv"])
def test_an_unclean_file_among_clean_ones_is_split_as_alone(
    tmp_path: Path, name: str, analysed_alone: list[str]
) -> None:
    rules = contract(tmp_path)
    names = ["clean_a.csv", name, "quoted.csv"]
    together = check_together(tmp_path, names, rules)
    assert analysed_alone == [name]  # the clean ones were decided by the batch query
    assert together == check_alone(tmp_path, names, rules)
    assert together[1]["outputs"][1] is not None  # its rejected rows, split off


def test_clean_files_need_no_query_of_their_own(tmp_path: Path, analysed_alone: list[str]) -> None:
    names = ["clean_a.csv", "clean_b.csv", "bad_type.csv", "quoted.csv", "header_only.csv"]
    results = check_together(tmp_path, names, contract(tmp_path))
    assert analysed_alone == ["bad_type.csv", "header_only.csv"]
    assert [r["report"]["outcome"] for r in results] == ["pass"] * 5
