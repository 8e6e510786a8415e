"""What a claim carries forward from the ledger record it replaces: what earlier deliveries
of the landing key left for a validated one to settle (no I/O)."""

from __future__ import annotations

from file_processing.ledger import MAX_CARRIED_QUARANTINES, ObjectRecord, carried_outputs


def test_the_quarantines_carried_forward_are_bounded() -> None:
    many = [f"quarantine/arrivals/dt=2026-01-{n % 28 + 1:02d}/feed/{n}.csv" for n in range(300)]
    previous = ObjectRecord(
        "landing/feed/report.csv",
        etag="e",
        state="quarantined",
        earlier_outputs=[*many[:-1], "validated/arrivals/dt=2025-12-31/report.csv"],
        outputs=[many[-1], many[-1] + ".quarantine.json"],
    )
    carried = carried_outputs(previous)
    quarantined = [k for k in carried if k.startswith("quarantine/")]
    assert quarantined == many[-MAX_CARRIED_QUARANTINES:]  # the newest kept
    assert "validated/arrivals/dt=2025-12-31/report.csv" in carried


def test_a_validated_record_carries_its_outputs_and_what_it_could_not_close() -> None:
    validated = ObjectRecord(
        "landing/vendor/a.csv",
        etag="e",
        state="validated",
        outputs=["validated/orders/dt=2026-11-02/a.csv"],
        earlier_outputs=["quarantine/orders/dt=2026-11-01/a.csv"],  # a store error
    )
    assert carried_outputs(validated) == [
        "quarantine/orders/dt=2026-11-01/a.csv",
        "validated/orders/dt=2026-11-02/a.csv",
    ]


def test_a_duplicate_record_carries_none_of_the_originals_outputs() -> None:
    duplicate = ObjectRecord(
        "landing/vendor/b.csv",
        etag="e",
        state="duplicate",
        outputs=["validated/orders/dt=2026-11-01/a.csv"],
        earlier_outputs=["quarantine/orders/dt=2026-11-02/b.csv"],
    )
    assert carried_outputs(duplicate) == ["quarantine/orders/dt=2026-11-02/b.csv"]


def test_a_record_an_earlier_release_wrote_carries_what_its_outputs_name() -> None:
    older = ObjectRecord.from_json(  # no earlier_outputs: written before the field
        b'{"key": "landing/vendor/a.csv", "etag": "e", "state": "quarantined", '
        b'"outputs": ["quarantine/_unknown/dt=2026-11-02/vendor/a.csv", '
        b'"quarantine/_unknown/dt=2026-11-02/vendor/a.csv.quarantine.json"]}'
    )
    assert carried_outputs(older) == ["quarantine/_unknown/dt=2026-11-02/vendor/a.csv"]
    failed = ObjectRecord("landing/vendor/a.csv", etag="f", state="failed")
    assert carried_outputs(failed) == []
    assert carried_outputs(None) == []


def test_a_released_duplicate_record_carries_none_of_the_originals_outputs() -> None:
    released = ObjectRecord(  # quarantine release of an older quarantine of the key
        "landing/vendor/b.csv",
        etag="e",
        state="released",
        duplicate_of="landing/vendor/a.csv",
        outputs=["validated/orders/dt=2026-11-01/a.csv"],
        earlier_outputs=["quarantine/orders/dt=2026-11-02/b.csv"],
    )
    assert carried_outputs(released) == ["quarantine/orders/dt=2026-11-02/b.csv"]
