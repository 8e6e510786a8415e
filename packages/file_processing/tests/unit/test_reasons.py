"""The reason-code taxonomy and the error that carries a code."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from etl_core.errors import EtlError
from file_processing.errors import FileProcessingError, RefusedError
from file_processing.reasons import Reason, describe, markdown_table


def test_codes_are_unique_dotted_or_single_snake_case_words() -> None:
    codes = [reason.value for reason in Reason]

    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*(\.[a-z]+(_[a-z]+)*)?", code) for code in codes)


def test_every_code_has_a_one_line_description() -> None:
    for reason in Reason:
        assert reason.description.strip()
        assert "\n" not in reason.description


def test_codes_later_lanes_rely_on_are_defined() -> None:
    for code in (
        "data.schema",
        "data.encoding",
        "data.quality",
        "control_mismatch",
        "duplicate",
        "contract.unmatched",
        "pgp.bomb",
        "archive.path_traversal",
    ):
        assert describe(code)


def test_unknown_code_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match=r"archive\.nope"):
        describe("archive.nope")


def test_markdown_table_lists_every_code_once() -> None:
    table = markdown_table()

    for reason in Reason:
        assert table.count(f"`{reason.value}`") == 1
    assert table.splitlines()[0] == "| reason code | meaning |"


def test_refused_error_carries_reason_message_and_member() -> None:
    error = RefusedError("archive.crc", "bad CRC", member="d.zip/a.csv")

    assert isinstance(error, FileProcessingError)
    assert isinstance(error, EtlError)
    assert error.reason is Reason.ARCHIVE_CRC
    assert error.reason == "archive.crc"
    assert str(error) == "archive.crc: bad CRC [d.zip/a.csv]"


def test_refused_error_rejects_a_code_outside_the_taxonomy() -> None:
    with pytest.raises(ValueError, match=r"archive\.made_up"):
        RefusedError("archive.made_up", "whatever")


def test_refused_error_survives_pickling() -> None:
    error = RefusedError(Reason.PGP_BOMB, "too big", member="x.gpg")

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.reason, copy.message, copy.member, str(copy)) == (
        error.reason,
        error.message,
        error.member,
        str(error),
    )


def test_the_readme_lists_every_reason_code_as_the_code_describes_it() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [row for row in markdown_table().splitlines()[2:] if row not in readme]
    assert not missing, "README reason table out of step: " + "; ".join(missing)
