"""Expected-file arrival: per partition date, did its landing file come, and when?

The contract's ``source`` and ``pattern`` name each day's file (the ``{date}`` in it); its
schedule (``expected``, ``grace``, ``holidays``, ``lag_days``) says when the file of each
date is due. Over the last ``lookback_days`` every due date gets a state:

========== ============================================= =====================
state      when                                          level
========== ============================================= =====================
on_time    arrived by due + grace                        ok
early      arrived before due - grace                    ok
late       arrived after due + grace                     warn (latest due), ok
missing    not there at due + grace                      critical
pending    due, still within its grace                   ok
unexpected a file for a date that was not due            warn
========== ============================================= =====================

A file's arrival is the time it was stored (its first one, if re-delivered); what became
of it (validated, quarantined and why) is read from the delivery manifests and
quarantine records.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from etl_core.contracts import Contract
from etl_core.errors import ArtifactError
from etl_core.layout import landing_prefix
from etl_core.storage import ObjectInfo
from observability.monitors.base import Level, Monitor, Result, human_duration
from observability.monitors.facts import DatasetFacts
from observability.monitors.schedule import Schedule

__all__ = ["ARRIVAL_STATES", "ArrivalMonitor"]

ARRIVAL_STATES = ("on_time", "early", "late", "missing", "pending", "unexpected")


class ArrivalMonitor(Monitor):
    """Which dated landing files arrived on time, late, early, not at all, or unasked."""

    kind = "arrival"

    def __init__(self, contract: Contract, schedule: Schedule) -> None:
        super().__init__(contract)
        self.schedule = schedule
        self.lookback = timedelta(days=contract.freshness.lookback_days)

    @classmethod
    def from_contract(cls, contract: Contract) -> ArrivalMonitor | None:
        """Only datasets with a schedule (``expected``) have files due."""
        schedule = Schedule.of(contract)
        return None if schedule is None else cls(contract, schedule)

    def first_day(self, now: datetime) -> date:
        """The earliest partition date judged at ``now``."""
        return self.schedule.partition_of(now - self.lookback)

    def evaluate(self, facts: DatasetFacts, now: datetime) -> list[Result]:
        """One result per judged partition date, oldest first."""
        due_days: dict[date, datetime] = {}
        for due in self.schedule.due_times(now - self.lookback, now):
            due_days.setdefault(self.schedule.partition_of(due), due)  # a day's first due time
        arrivals = facts.arrivals()
        first = self.first_day(now)
        days = sorted({*due_days, *(day for day in arrivals if day >= first)})
        latest_due = max(due_days, default=None)
        results = []
        for day in days:
            due_at = due_days[day] if day in due_days else self.schedule.due_for(day)
            result = self._judge(day, due_at, arrivals.get(day, []), now, latest=day == latest_due)
            if result is not None:
                results.append(self._with_outcome(result, facts, day))
        return results

    def _judge(
        self, day: date, due: datetime | None, files: list[ObjectInfo], now: datetime, latest: bool
    ) -> Result | None:
        subject = day.isoformat()
        grace = self.schedule.grace
        if due is None:
            if not files:
                return None
            return self._arrived(subject, "unexpected", "warn", files, None, "no file is due")
        threshold = f"due {due:%Y-%m-%d %H:%M %Z}, grace {human_duration(grace)}"
        if files:
            arrived = files[0].last_modified
            if arrived < due - grace:
                return self._arrived(subject, "early", "ok", files, due, threshold)
            if arrived <= due + grace:
                return self._arrived(subject, "on_time", "ok", files, due, threshold)
            level: Level = "warn" if latest else "ok"
            return self._arrived(subject, "late", level, files, due, threshold)
        if due > now:
            return None  # not due yet: nothing to say
        return self._absent(subject, due, now, threshold)

    def _absent(self, subject: str, due: datetime, now: datetime, threshold: str) -> Result:
        """A due file that is not there: pending within its grace, then missing."""
        deadline = due + self.schedule.grace
        detail = {"due": due.isoformat(), "deadline": deadline.isoformat()}
        if now < deadline:
            why = f"the {subject} file is due; within its grace until {deadline:%H:%M %Z}"
            return self.result(
                subject,
                "ok",
                "pending",
                observed="not yet",
                threshold=threshold,
                why=why,
                detail=detail,
            )
        missing_for = now - deadline
        why = (
            f"the {subject} file of {self.contract.dataset} ({self.contract.pattern!r} under "
            f"{landing_prefix(self.contract.source)}) did not arrive: due "
            f"{due:%Y-%m-%d %H:%M %Z}, {human_duration(missing_for)} past its grace"
        )
        return self.result(
            subject,
            "critical",
            "missing",
            observed="not arrived",
            threshold=threshold,
            why=why,
            value=missing_for.total_seconds(),
            detail=detail,
        )

    def _arrived(
        self,
        subject: str,
        state: str,
        level: Level,
        files: list[ObjectInfo],
        due: datetime | None,
        threshold: str,
    ) -> Result:
        first = files[0]
        when = first.last_modified
        observed = f"arrived {when:%Y-%m-%d %H:%M} UTC"
        detail = {"key": first.key, "arrived": when.isoformat()}
        delay = None
        if due is not None:
            delay = (when - due).total_seconds()
            sign = "+" if delay >= 0 else "-"
            observed += f" ({sign}{human_duration(abs(when - due))} from due)"
            detail["due"] = due.isoformat()
        if len(files) > 1:
            detail["files"] = ", ".join(info.key for info in files)
        why = {
            "on_time": f"the {subject} file arrived in time",
            "early": f"the {subject} file arrived before its due time's window",
            "late": f"the {subject} file arrived after its due time and grace",
            "unexpected": (
                f"a file for {subject} arrived, but nothing is due for that date "
                "(outside the schedule, or a holiday)"
            ),
        }[state]
        return self.result(
            subject,
            level,
            state,
            observed=observed,
            threshold=threshold,
            why=why,
            value=delay,
            detail=detail,
        )

    def _with_outcome(self, result: Result, facts: DatasetFacts, day: date) -> Result:
        key = result.detail.get("key")
        if key is None:
            return result
        try:
            outcome = facts.outcomes(day).get(key, "not processed yet")
        except ArtifactError as exc:
            outcome = f"unknown: {exc}"
        return replace(result, detail={**result.detail, "outcome": outcome})
