"""The alert lifecycle: monitor results open, update, remind and resolve alerts.

Each evaluation's results are grouped into conditions, one per :func:`fingerprint`
(dataset + monitor, + zone for ``age``: the one monitor that judges zones apart; an
arrival or volume alert covers the dataset's feed and all its judged dates). A condition
at ``warn`` or ``critical`` opens an alert, or updates the active one (escalated,
de-escalated, a new summary); back at ``ok`` it resolves it. ``unknown`` (nothing
learnt) neither opens nor resolves; but a condition no longer measured (states
:data:`~observability.monitors.UNMEASURED_STATES`: an age ``unjudged``, the contract lost
its thresholds or a zone that warned of an object dated ahead caught up with it; an age
``empty``, the zone was emptied, by a lifecycle rule say, and not judged late any more
(:mod:`observability.alerts.emptied` keeps a zone emptied while late judged by its last
seen object); a volume with ``no_data`` or ``no_baseline``, its anomalous partition no
longer the newest or gone) resolves it once, saying so ("curated of sales is no longer
measured: ...", "volume of sales is no longer measured: ..."), as nothing judges that
condition any more.
An open alert is reminded every ``reminder_interval``; an acknowledged one only speaks
again when it escalates or resolves; a snoozed one is quiet until its snooze ends, then
open again.

Each event is recorded in the alert's outbox (``owed_event``, owed to every channel) in
the same write as the change, so what is told survives a webhook outage or a killed
process: the watch (:mod:`observability.alerts.watch`) delivers and settles it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from observability.alerts.errors import AlertNotFoundError
from observability.alerts.model import Alert, AlertLevel, Event, Notification, fingerprint
from observability.alerts.store import AlertStore
from observability.evaluation import Evaluation
from observability.monitors import UNMEASURED_STATES, Clock, Level, Result, worst

__all__ = ["MAX_SNOOZE", "AlertBook", "Condition", "conditions"]

MAX_SNOOZE = timedelta(days=90)
"""The longest snooze: longer is a typo (``36500d``) or an alert nobody means to hear again,
which is a monitor to change, not an alert to silence for good."""

_SEVERITY = {"warn": 1, "critical": 2}
_SUMMARY_RESULTS = 3
_NEVER_CAME = re.compile(r"(?:^|; )(\d{4}-\d{2}-\d{2}): the \1 file of .*? did not arrive")
"""A missing date in an arrival alert's summary (``<date>: <why>``, the monitor's words)."""
_STUCK = re.compile(r"nothing (\w+) yet: (\w+)'s first (\w+) \(")
"""A stuck zone's age alert summary (``never_reached``, the age monitor's words): the zone,
the zone before it and what that one holds (``file``, ``delivery``)."""


@dataclass(frozen=True)
class Condition:
    """What an evaluation says about one fingerprint: its level and why."""

    fingerprint: str
    dataset: str
    monitor: str
    subject: str
    level: Level
    summary: str
    unmeasured: str = ""
    """Why the condition is no longer measured, when every result is in a state of
    :data:`~observability.monitors.UNMEASURED_STATES` (an emptied zone, an age nothing
    judges, a volume without partition or baseline); ``""`` otherwise."""
    subjects: frozenset[str] = field(default_factory=frozenset)
    """Every result's subject (an arrival's judged dates)."""


def conditions(evaluation: Evaluation) -> dict[str, Condition]:
    """The evaluation's results grouped by alert fingerprint."""
    groups: dict[tuple[str, str, str], list[Result]] = {}
    for result in evaluation.results:
        subject = result.subject if result.monitor == "age" else ""
        groups.setdefault((result.dataset, result.monitor, subject), []).append(result)
    found: dict[str, Condition] = {}
    for (dataset, monitor, subject), results in groups.items():
        level = worst(r.level for r in results)
        worst_ones = [r for r in results if r.level == level]
        said = "; ".join(
            r.why if monitor == "age" else f"{r.subject}: {r.why}"
            for r in worst_ones[:_SUMMARY_RESULTS]
        )
        more = len(worst_ones) - _SUMMARY_RESULTS
        summary = said + (f" (and {more} more)" if more > 0 else "")
        key = fingerprint(dataset, monitor, subject)
        unmeasured = _unmeasured(results)
        subjects = frozenset(r.subject for r in results)
        found[key] = Condition(key, dataset, monitor, subject, level, summary, unmeasured, subjects)
    return found


class AlertBook:
    """The alerts of a store, changed by evaluations and by operators.

    Args:
        store: Where the alerts are kept.
        clock: The time of acknowledgements and snoozes (evaluations carry their own).
        reminder_interval: How often an open alert is told again; zero: never.
        channels: The channels' keys each event is owed to (none: nothing is owed).
    """

    def __init__(
        self,
        store: AlertStore,
        clock: Clock,
        *,
        reminder_interval: timedelta,
        channels: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.clock = clock
        self.reminder_interval = reminder_interval
        self.channels = tuple(channels)

    def active(self) -> list[Alert]:
        """The alerts not resolved, newest first."""
        return self.store.alerts()

    def observe(
        self, evaluation: Evaluation, *, declared: Collection[str] | None = None
    ) -> list[Notification]:
        """Open, update, remind and resolve alerts from ``evaluation``; what to tell.

        Each event is also written to its alert's outbox, owed to :attr:`channels`.

        Only the datasets the evaluation covers are touched (``check --dataset``), and,
        given ``declared`` (every dataset the contracts declare), the alerts of a dataset
        not among them: its contract was removed, nothing will evaluate it again, so its
        alert resolves once, saying so. An evaluated dataset not ``declared`` (a process
        started before its contract was removed) is such a one too: it neither opens nor
        keeps an alert, or that process and one started since would reopen and resolve it
        in turn.
        """
        now = evaluation.evaluated_at
        seen = conditions(evaluation)
        covered = {status.dataset for status in evaluation.datasets}
        if declared is not None:
            covered &= set(declared)
            seen = {key: c for key, c in seen.items() if c.dataset in covered}
        told: list[Notification] = []

        def touched(alert: Alert) -> bool:
            return alert.dataset in covered or (
                declared is not None and alert.dataset not in declared
            )

        def change(active: Mapping[str, Alert]) -> list[Alert]:
            told.clear()  # a retried change starts over
            written: list[Alert] = []
            for key in sorted(set(seen) | {k for k, a in active.items() if touched(a)}):
                before = active.get(key)
                if before is not None and before.dataset not in covered:  # not declared
                    after, event = _retired(before, now)
                else:
                    after, event = self._step(before, seen.get(key), now)
                if after is not None and event is not None:
                    after = after.owing(event, now, self.channels)
                if after is not None and after != before:
                    written.append(after)
                if after is not None and event is not None:
                    told.append(Notification(event, after, now))
            return written

        self.store.change(change)
        return list(told)

    def acknowledge(self, key: str, *, by: str = "") -> Alert:
        """Acknowledge an active alert: no more reminders; escalation or resolution still speak.

        Raises:
            AlertNotFoundError: No active alert has this fingerprint.
        """
        now = self.clock.now()
        return self._change_one(
            key,
            lambda a: a.changed(
                state="acknowledged",
                acknowledged_at=now,
                acknowledged_by=by,
                snoozed_until=None,
                updated_at=now,
            ),
        )

    def snooze(self, key: str, duration: timedelta) -> Alert:
        """Silence an active alert for ``duration``; it is open again afterwards.

        Raises:
            ValueError: ``duration`` is not positive, or longer than :data:`MAX_SNOOZE`.
            AlertNotFoundError: No active alert has this fingerprint.
        """
        if duration <= timedelta(0):
            raise ValueError(f"a snooze must last longer than 0s, got {duration}")
        if duration > MAX_SNOOZE:
            raise ValueError(f"a snooze lasts at most {MAX_SNOOZE.days}d, got {duration}")
        now = self.clock.now()
        return self._change_one(
            key, lambda a: a.changed(state="snoozed", snoozed_until=now + duration, updated_at=now)
        )

    def _change_one(self, key: str, edit: Callable[[Alert], Alert]) -> Alert:
        def change(active: Mapping[str, Alert]) -> Iterable[Alert]:
            if key not in active:
                raise AlertNotFoundError(key)
            return [edit(active[key])]

        (written,) = self.store.change(change)
        return written

    def _step(
        self, before: Alert | None, condition: Condition | None, now: datetime
    ) -> tuple[Alert | None, Event | None]:
        """One fingerprint's alert after ``condition`` (``None``: no longer monitored)."""
        if condition is None:
            if before is None:
                return None, None
            summary = f"the {before.monitor} monitor no longer reports on it"
            return _resolved(before, summary, now), "resolved"
        if condition.unmeasured:
            if before is None:
                return None, None
            summary = condition.unmeasured + _never_got_through(before)
            return _resolved(before, summary, now), "resolved"
        if condition.level == "unknown":  # nothing learnt
            return before, None
        if condition.level == "ok":
            if before is None:
                return None, None
            summary = condition.summary + _left_the_window(before, condition)
            return _resolved(before, summary, now), "resolved"
        level: AlertLevel = "critical" if condition.level == "critical" else "warn"
        if before is None:
            opened = Alert(
                fingerprint=condition.fingerprint,
                dataset=condition.dataset,
                monitor=condition.monitor,
                subject=condition.subject,
                level=level,
                state="open",
                summary=condition.summary,
                opened_at=now,
                updated_at=now,
                notified_at=now,
            )
            return opened, "opened"
        return self._update(before, level, condition.summary, now)

    def _update(
        self, alert: Alert, level: AlertLevel, summary: str, now: datetime
    ) -> tuple[Alert, Event | None]:
        until = alert.snoozed_until
        if alert.state == "snoozed" and until is not None and now >= until:
            alert = alert.changed(state="open", snoozed_until=None, updated_at=now)
        event: Event | None = None
        if level != alert.level:
            event = "escalated" if _SEVERITY[level] > _SEVERITY[alert.level] else "deescalated"
            alert = alert.changed(level=level, updated_at=now)
            if event == "escalated" and alert.state == "acknowledged":
                alert = alert.changed(state="open")
        alert = alert.changed(summary=summary)
        if alert.state == "snoozed":
            return alert, None
        if event is None and alert.state == "open" and self._reminder_due(alert, now):
            event = "reminder"
        if event is not None:
            alert = alert.changed(notified_at=now)
        return alert, event

    def _reminder_due(self, alert: Alert, now: datetime) -> bool:
        if self.reminder_interval <= timedelta(0):
            return False
        last = alert.notified_at or alert.opened_at
        return now - last >= self.reminder_interval


def _unmeasured(results: Sequence[Result]) -> str:
    """Why the condition of ``results`` is no longer measured, as its alert's resolution
    says it ("curated of sales is no longer measured: no curated object of sales has been
    seen", "volume of sales is no longer measured: 2026-12-08: only 1 earlier Tuesdays
    ..."), when every result is in an :data:`UNMEASURED_STATES` state of its monitor;
    ``""`` otherwise."""
    if not results or any(
        r.level != "unknown" or r.state not in UNMEASURED_STATES.get(r.monitor, ()) for r in results
    ):
        return ""
    first = results[0]
    what = first.subject if first.monitor == "age" else first.monitor
    why = "; ".join(_said_of(r) for r in results)
    return f"{what} of {first.dataset} is no longer measured: {why}"


def _said_of(result: Result) -> str:
    """A result's why as a resolution says it: prefixed with the partition date it is about
    (a volume's ``2026-12-08``), not with an age's zone (the subject already named)."""
    if result.monitor == "age" or not result.subject[:1].isdigit():
        return result.why
    return f"{result.subject}: {result.why}"


def _never_got_through(before: Alert) -> str:
    """What a stuck zone's alert (``never_reached``) resolving as no longer measured must add:
    the upstream objects it awaited are gone without reaching it (a lifecycle rule expired
    them unprocessed, say); "no validated object has been seen" alone reads as a zone
    emptied after its data passed through, hiding a delivery lost on the way. ``""`` for
    any other alert."""
    stuck = _STUCK.match(before.summary) if before.monitor == "age" else None
    if stuck is None:
        return ""
    zone, source, kind = stuck.groups()
    kinds = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"  # files, deliveries
    return f"; {source}'s {kinds} it awaited are gone without reaching {zone}"


def _left_the_window(before: Alert, condition: Condition) -> str:
    """The missing dates of an arrival alert no longer judged, said as such: a file that
    never came resolves its alert once its date leaves ``lookback_days``, and "resolved"
    must not read as "it arrived". ``""`` when none did."""
    if before.monitor != "arrival":
        return ""
    gone = [day for day in _NEVER_CAME.findall(before.summary) if day not in condition.subjects]
    if not gone:
        return ""
    files = "its file" if len(gone) == 1 else "their files"
    return f"; {', '.join(gone)} left the lookback window without {files} arriving"


def _retired(alert: Alert, now: datetime) -> tuple[Alert | None, Event | None]:
    """``alert`` resolved because no contract declares its dataset any more."""
    return _resolved(alert, f"no contract declares {alert.dataset} any more", now), "resolved"


def _resolved(alert: Alert, summary: str, now: datetime) -> Alert:
    return alert.changed(
        state="resolved",
        summary=summary,
        resolved_at=now,
        updated_at=now,
        notified_at=now,
        snoozed_until=None,
    )
