"""The field profile of landed records: kinds of JSON values, proposed column types, and
which kinds a declared column type accepts (the drift report's type changes)."""

from __future__ import annotations

import pytest

from data_pipeline.ingest.profile import MAX_FIELDS, FieldProfile, compatible, kind_of


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, "null"),
        (True, "bool"),
        (3, "int"),
        (3.5, "float"),
        ("2026-03-01", "date"),
        ("2026-02-30", "string"),
        ("2026-03-01T10:00:00Z", "timestamp"),
        ("2026-03-01 10:00:00.123+01:00", "timestamp"),
        ("2026-13-01T10:00:00Z", "string"),
        ("hello", "string"),
        ({"a": 1}, "object"),
        ([1], "array"),
    ],
)
def test_kind_of_a_json_value(value: object, kind: str) -> None:
    assert kind_of(value) == kind


def test_the_proposed_type_is_the_narrowest_every_value_fits() -> None:
    profile = FieldProfile()
    for record in (
        {"id": 1, "score": 1, "day": "2026-03-01", "at": "2026-03-01", "flag": True, "x": None},
        {"id": 2, "score": 1.5, "day": "2026-03-02", "at": "2026-03-01T10:00:00Z", "flag": 1},
    ):
        profile.add(record)

    proposed = {name: profile.proposed_type(name) for name in profile.fields}

    assert proposed == {
        "id": "int",
        "score": "float",
        "day": "date",
        "at": "timestamp",
        "flag": "string",  # a bool and a number: no narrower type holds both
        "x": "string",  # only nulls seen
    }
    assert profile.present("x") == 1


def test_a_profile_reads_back_from_its_data_and_is_bounded() -> None:
    profile = FieldProfile()
    profile.add({f"f{i}": i for i in range(MAX_FIELDS + 5)}, skip=["f0"])

    again = FieldProfile.from_dict(profile.to_dict())

    assert again == profile
    assert len(again.fields) == MAX_FIELDS
    assert again.truncated
    assert "f0" not in again.fields


@pytest.mark.parametrize(
    ("column", "kind", "fits"),
    [
        ("int", "int", True),
        ("int", "float", False),
        ("float", "int", True),
        ("decimal", "float", True),
        ("timestamp", "date", True),
        ("date", "timestamp", False),
        ("string", "object", False),
        ("bool", "null", True),
    ],
)
def test_which_kinds_a_column_type_accepts(column: str, kind: str, fits: bool) -> None:
    assert compatible(column, kind) is fits


def test_a_profiles_data_is_a_snapshot_later_records_leave_unchanged() -> None:
    # a checkpoint's state keeps the data and is committed after later records were profiled
    profile = FieldProfile()
    profile.add_many([{"id": i, "name": "x"} for i in range(10)])
    data = profile.to_dict()
    profile.add_many([{"id": "text", "name": None} for _ in range(10)])
    assert data == {
        "records": 10,
        "fields": {"id": {"int": 10}, "name": {"string": 10}},
        "truncated": False,
    }


COLUMN_VALUES: dict[str, list[object]] = {
    "texts": ["a", "text of some length", "é ✓", "2026-x", "1999-", "abc\n2026-03-01"],
    "dates": ["2026-03-01", "1999-12-31", "2026-02-30"],
    "stamps": ["2026-03-01T10:00:00Z", "2026-03-01 10:00:00+01:00", "2026-13-01T10:00:00Z"],
    "numbers": [0, 7, -2.5, True, False, None],
    "nested": [{"a": 1}, [1, "x"], None],
}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("fields", [0, 1, 3])
def test_records_profiled_by_column_count_what_one_by_one_counts(seed: int, fields: int) -> None:
    import random

    rng = random.Random(seed)
    columns = [rng.choice(sorted(COLUMN_VALUES)) for _ in range(fields)]
    mixing = rng.random() < 0.5  # else one kind of text or value a column
    records = []
    for _ in range(rng.choice([8, 30, 200])):
        record: dict[str, object] = {}
        for number, column in enumerate(columns):
            values = COLUMN_VALUES[column]
            pool = values if mixing else values[:1]
            record[f"f{number}"] = rng.choice(pool + ([1] if mixing and rng.random() < 0.1 else []))
        records.append(record)
    by_column, one_by_one = FieldProfile(), FieldProfile()

    by_column.add_many(records)
    for record in records:
        one_by_one.add(record)

    assert by_column.to_dict() == one_by_one.to_dict()
    assert [list(kinds) for kinds in by_column.fields.values()] == [
        list(kinds) for kinds in one_by_one.fields.values()
    ]  # the kinds in the order met
