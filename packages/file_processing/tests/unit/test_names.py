"""Landing keys judged as names: which reason, and the safe name a bad key gets."""

from __future__ import annotations

import pytest

from file_processing.names import escaped, is_addressable, key_problem, safe_name
from file_processing.reasons import Reason


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("landing/a/../b.csv", Reason.NAME_PATH_TRAVERSAL),
        ("landing/a/./b.csv", Reason.NAME_PATH_TRAVERSAL),
        ("landing/a/b\x00.csv", Reason.NAME_CONTROL_CHARACTER),
        ("landing/a/b\x7f.csv", Reason.NAME_CONTROL_CHARACTER),
        ("landing/a/b\x85.csv", Reason.NAME_CONTROL_CHARACTER),
        ("landing/a/b\u2028.csv", Reason.NAME_CONTROL_CHARACTER),
        *[(f"landing/a/b{chr(c)}.csv", Reason.NAME_SPOOFING) for c in range(0x202A, 0x202F)],
        *[(f"landing/a/b{chr(c)}.csv", Reason.NAME_SPOOFING) for c in range(0x2066, 0x206A)],
        ("landing/a/b\u200e.csv", Reason.NAME_SPOOFING),
        ("landing/a/b\u200f.csv", Reason.NAME_SPOOFING),
        ("landing/a/b\ufeff.csv", Reason.NAME_SPOOFING),
        ("landing/a//b.csv", Reason.NAME_INVALID_KEY),
        ("landing/a/b.csv/", Reason.NAME_INVALID_KEY),
        ("landing/a/b\\c.csv", Reason.NAME_INVALID_KEY),
        ("landing/a/" + "x" * 1100, Reason.NAME_INVALID_KEY),
    ],
)
def test_a_hostile_key_gets_its_name_reason(key: str, reason: Reason) -> None:
    problem = key_problem(key)

    assert problem is not None
    assert problem.reason is reason


@pytest.mark.parametrize(
    "key", ["landing/acme/orders_2026-11-01.csv", "landing/acme/Bestellungen_Müller ü.csv"]
)
def test_an_ordinary_key_has_no_name_problem(key: str) -> None:
    assert key_problem(key) is None
    assert is_addressable(key)


def test_a_spoofed_name_is_made_safe_and_distinct_keys_stay_distinct() -> None:
    first = safe_name("vendor/report\u202egpj.exe", 100)
    second = safe_name("vendor/report\u202dgpj.exe", 100)

    assert first.startswith("vendor_report_gpj.exe~")
    assert first != second
    assert first.isprintable()


def test_a_safe_name_fits_its_byte_budget_without_splitting_a_character() -> None:
    name = safe_name("vendor/" + "é" * 400, 120)

    assert len(name.encode()) <= 120
    name.encode().decode()  # whole characters only


def test_a_key_of_traversal_segments_only_still_gets_a_name() -> None:
    assert safe_name("../..", 50).startswith("object~")


def test_escaped_writes_invisible_characters_as_escapes() -> None:
    assert escaped("a\u202eb\x01c\nd") == "a\\u202eb\\x01c\\x0ad"
