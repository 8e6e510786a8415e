"""Where ingestion of an endpoint stands, and the interface of the stores that keep it.

The state of an endpoint is its high-water mark (``cursor``, the largest incremental
value of every finished window) and the window in progress, with its exact position:
which parent record, which page request, how many records of that page already
landed, the next chunk and raw page numbers. It is saved only after the chunk it
accounts for is durable, under the endpoint's lease (fenced), so a crash resumes at
the last landed chunk: nothing is lost and, chunk keys being deterministic, nothing
lands twice.

Two stores implement :class:`StateStore`: the object store (``_state/data_pipeline/api/``,
:mod:`.objects`) and the database's API ingestion table (:mod:`.database`). Both pass
the same contract tests.
"""

from __future__ import annotations

import abc
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import Any

from etl_core.storage import Lease

__all__ = ["EndpointState", "StateStore", "Window"]


@dataclass(frozen=True)
class Window:
    """A window of an endpoint being ingested, and the position reached in it.

    Attributes:
        unit: The work unit key that opened it (``<source>/<endpoint>/<window>``).
        run: The run id of its raw archive folder and chunk names (kept on resume).
        dt: The partition date of its keys.
        start: The incremental value sent as the cursor parameter (``None``: none).
        end: The window's end, sent as ``end_param`` (``None``: open).
        bounded: A ``--since``/``--until`` window (it never moves the mark backwards).
        sequence: The parent record being walked (0 for an endpoint without parent).
        page: The next page request (``None``: the first page of ``sequence``).
        skip: Records of that page already landed.
        chunk: The next chunk number.
        raw_page: The raw archive number of the page at ``page``.
        records: Records landed in this window so far.
        high_water: The largest incremental value among them.
        boundary: The identities (primary key) of those records carrying ``high_water``.
        parents: The parent field values, one list per parent record (child endpoints).
        started_at: When the window started (ISO 8601).
        dead_letters: Items and pages set aside so far (:mod:`..deadletters`).
        profile: The fields of the records landed so far (:class:`..profile.FieldProfile`
            data), for the drift report.
    """

    unit: str
    run: str
    dt: date
    start: str | None = None
    end: str | None = None
    bounded: bool = False
    sequence: int = 0
    page: dict[str, Any] | None = None
    skip: int = 0
    chunk: int = 0
    raw_page: int = 0
    records: int = 0
    high_water: str | None = None
    boundary: list[str] = field(default_factory=list)
    parents: list[list[str]] | None = None
    started_at: str = ""
    dead_letters: int = 0
    profile: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The window as JSON-ready data."""
        data = asdict(self)
        data["dt"] = self.dt.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Window:
        """A window read back from :meth:`to_dict` data."""
        return cls(**{**data, "dt": date.fromisoformat(data["dt"])})


@dataclass(frozen=True)
class EndpointState:
    """Where ingestion of one endpoint stands.

    Attributes:
        cursor: The high-water mark of the finished windows (``None`` before the first).
        boundary: The identities of the records landed at ``cursor`` (the mark is sent
            inclusively; these are not landed again).
        windows_done: The bounded (``--since``/``--until``) windows finished, by unit key.
        window: The window in progress, if a run stopped inside one.
        last_success_at: When a window last finished (ISO 8601).
        last_error: Why the last attempt failed (empty after a success).
        consecutive_failures: Failed attempts since the last success.
        records_total: Records landed, all runs together.
        last_run: The last finished window: its ``run``, ``dt``, ``records``,
            ``dead_letters``, ``pages_unread`` (whole pages set aside: records never landed)
            and ``drift`` (field names, :func:`..drift.drift_summary`).
        token: The fencing token of the lease it was written under.
    """

    source: str
    endpoint: str
    cursor: str | None = None
    boundary: list[str] = field(default_factory=list)
    windows_done: list[str] = field(default_factory=list)
    window: Window | None = None
    last_success_at: str | None = None
    last_error: str = ""
    consecutive_failures: int = 0
    records_total: int = 0
    last_run: dict[str, Any] | None = None
    token: int = 0

    def to_json(self) -> bytes:
        """The state as stored in the object store."""
        data = asdict(self)
        data["window"] = self.window.to_dict() if self.window else None
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, key: str) -> EndpointState:
        """A state read back from :meth:`to_json` bytes.

        Raises:
            ValueError: the document is not a state (naming ``key``).
        """
        try:
            raw = json.loads(data)
            window = raw.pop("window", None)
            return cls(**raw, window=Window.from_dict(window) if window else None)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{key} is not an API ingestion state: {exc}") from None

    def with_window(self, window: Window | None) -> EndpointState:
        """This state with ``window`` in progress (``None``: none)."""
        return replace(self, window=window)


class StateStore(abc.ABC):
    """Keeps the :class:`EndpointState` of every endpoint."""

    kind: str = "state"
    """``objects`` or ``database``, for messages."""
    saves_from_any_thread: bool = False
    """Whether :meth:`save` may run in another thread than the walk's (the window's
    writer commits a checkpoint's state as soon as its files are durable); not the
    database's, whose connections belong to the thread that opened them."""

    @abc.abstractmethod
    def load(self, source: str, endpoint: str) -> EndpointState:
        """The endpoint's state (an empty one before its first run)."""

    @abc.abstractmethod
    def save(self, lease: Lease, state: EndpointState, *, landed: int, finished: bool) -> None:
        """Commit ``state`` under ``lease`` (checked: a taken-over lease raises).

        Args:
            landed: Records landed since the last save (added to the total).
            finished: A window ended: the success time is set and failures reset.

        Raises:
            LeaseLostError: another run took the endpoint over; nothing is written.
        """

    @abc.abstractmethod
    def fail(self, source: str, endpoint: str, error: str) -> None:
        """Record a failed attempt; the cursor and the window's position stay."""
