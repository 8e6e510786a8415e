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


def test_a_validated_or_duplicate_record_carries_only_its_own_outputs() -> None:
    validated = ObjectRecord(
        "landing/vendor/a.csv",
        etag="e",
        state="validated",
        outputs=["validated/orders/dt=2026-11-02/a.csv"],
        earlier_outputs=["quarantine/orders/dt=2026-11-02/a.csv"],
    )
    assert carried_outputs(validated) == ["validated/orders/dt=2026-11-02/a.csv"]
    duplicate = ObjectRecord(
        "landing/vendor/b.csv",
        etag="e",
        state="duplicate",
        outputs=["validated/orders/dt=2026-11-01/a.csv"],
        earlier_outputs=["quarantine/orders/dt=2026-11-02/b.csv"],
    )
    assert carried_outputs(duplicate) == ["quarantine/orders/dt=2026-11-02/b.csv"]
