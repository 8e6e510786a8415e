"""Which member names may be published to ``validated/``, and who owns what is there.

A member is published as ``validated/<dataset>/dt=<date>/<member path>`` with its
quality report (and rejected rows) beside it, at the keys :mod:`etl_core.layout`
gives; the delivery's manifest, written last, makes them visible to readers.
Names are checked before anything is written, so a delivery is published whole
or not at all: a name the store cannot hold, a hidden name, a reserved suffix
(it would pass for another file's report), or a name that is also another
member's folder is refused with ``archive.bad_name``; a key that another
landing object's manifest names is refused with ``delivery.conflict``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime

from etl_core.artifacts import (
    DeliveryManifest,
    DeliveryManifests,
    QualitySummary,
    WithdrawalNotice,
    read_deliveries,
    utc_timestamp,
)
from etl_core.errors import (
    ArtifactError,
    EtlError,
    InvalidKeyError,
    ObjectConflictError,
    ObjectNotFoundError,
)
from etl_core.layout import (
    QUALITY_SUFFIX,
    SIDECAR_SUFFIXES,
    VALIDATED,
    deliveries_prefix,
    delivery_manifest_key,
    is_delivery_manifest,
    partition_of,
    partition_prefix,
    quality_report_key,
    validated_key,
    validated_prefix,
    withdrawal_notice_key,
    zone_of,
)
from etl_core.storage import NO_CHANGE, NoChange, ObjectInfo, ObjectStore, Records
from etl_core.storage.keys import validate_key
from file_processing.errors import RefusedError
from file_processing.reasons import Reason

__all__ = ["check_ownership", "output_keys", "remove_stale", "void_withdrawals"]

logger = logging.getLogger(__name__)

_MAX_NAME_BYTES = 255 - len(QUALITY_SUFFIX)  # a file name on common file systems
_MAX_KEY_BYTES = 1024 - len(QUALITY_SUFFIX) - 64  # S3's key limit, with room for a prefix


def output_keys(dataset: str, partition: date, members: Sequence[str]) -> list[str]:
    """The data keys of ``members``, after checking every name can be published.

    Raises:
        RefusedError: ``archive.bad_name`` naming the first member that cannot.
    """
    keys = [validated_key(dataset, partition, member) for member in members]
    for member, key in zip(members, keys, strict=True):
        problem = _name_problem(member, key)
        if problem:
            raise RefusedError(Reason.ARCHIVE_BAD_NAME, f"{member!r}: {problem}", member=member)
    folders = {key.rsplit("/", i)[0] for key in keys for i in range(1, key.count("/"))}
    for member, key in zip(members, keys, strict=True):
        if key in folders:
            raise RefusedError(
                Reason.ARCHIVE_BAD_NAME,
                f"{member!r} is a file and also the folder of another member",
                member=member,
            )
    return keys


def check_ownership(
    store: ObjectStore,
    keys: Sequence[str],
    landing_key: str,
    *,
    manifests: DeliveryManifests | None = None,
) -> None:
    """Refuse to replace validated data that another landing object delivered.

    The delivery manifests say who owns a key. A key no manifest names is the
    leftover of a publish that did not finish: it may be replaced, unless its
    quality report names another delivery (data written before manifests were).

    Args:
        manifests: The manifests this process has read (each read once per ETag).

    Raises:
        RefusedError: ``delivery.conflict`` naming the key and the other delivery.
    """
    owners = _manifest_owners(store, keys, manifests)
    for key in keys:
        owner = owners.get(key) or _report_owner(store, key)
        if owner is not None and owner != landing_key:
            raise RefusedError(
                Reason.DELIVERY_CONFLICT,
                f"{key} already holds the data of {owner}; two deliveries may not publish "
                "the same file (rename one, or remove the other's output first)",
            )


def _manifest_owners(
    store: ObjectStore, keys: Sequence[str], manifests: DeliveryManifests | None
) -> dict[str, str]:
    """Key -> the landing key of the published delivery that names it."""
    partitions = {(p.dataset, p.dt) for p in map(partition_of, keys) if p is not None}
    owners: dict[str, str] = {}
    for dataset, dt in sorted(partitions):
        for manifest in read_deliveries(store, dataset, dt, cache=manifests):
            owners.update(dict.fromkeys(manifest.keys, manifest.delivery.key))
    return owners


def _report_owner(store: ObjectStore, key: str) -> str | None:
    """Who an unlisted key's quality report says delivered it (``None``: nobody, or this run's
    own unfinished publish left data without a report)."""
    try:
        report = QualitySummary.from_json(store.read_bytes(quality_report_key(key)))
    except (ObjectNotFoundError, ArtifactError):
        return None
    return report.delivery.key


def remove_stale(
    store: ObjectStore,
    previous: Iterable[str],
    current: Iterable[str],
    *,
    landing_key: str,
    run_id: str = "",
    same_delivery: bool = False,
    delivery: ObjectInfo | None = None,
    one_day_key: bool = False,
    leftovers: Iterable[str] = (),
) -> list[str]:
    """Delete validated outputs of an earlier delivery under the same key that this one
    lacks, in the partitions this one was published to.

    A delivery replaces what its key delivered to the same dataset and date; another
    partition's outputs are another day's data (an arrival-dated key gets a new file
    every day), never removed, unless they are this same delivery's: ``same_delivery``
    (the very delivery, its ETag, that published them was processed again:
    ``process --force`` after a contract change moved it), or, given the ``delivery``
    being published, a partition of a date it is published on whose delivery manifest of
    its landing key names its ETag (the same move, whatever attempts failed, were
    quarantined or were killed between: the ledger's last state no longer says it). They
    are the same data under a name that is no longer right: left, downstream would read
    them twice.

    ``one_day_key``: the key is dated by its name or a folder (``date_from`` ``name`` or
    ``path``), so every delivery of it is the same day's file: what the last one published
    in another partition is an earlier contract's reading of the key (a date format or a
    dataset since fixed), replaced too. Only an arrival-dated key delivers other days.

    ``leftovers``: stale outputs the last validated delivery of the key could not remove
    (a store error; its ledger record names them): retried whatever their partition, or
    an old partition left published beside the moved copy would be forgotten.

    Another partition's manifest is deleted before its members, so a process killed on
    the way leaves readers no manifest naming a file that is gone. Before it, a
    :class:`~etl_core.artifacts.WithdrawalNotice` of ``landing_key`` (by ``run_id``) is
    written for that partition: downstream withdraws a day it built only on that notice,
    never because the day's deliveries are gone. A notice that cannot be written keeps the
    manifest (and the partition's members), as a failed delete does. A partition the key
    publishes to now and did not before loses the notice of the key's earlier move off it
    (moved back: the notice is no longer true). Members dropped from a partition the key
    still publishes to are named in its notice before they are removed
    (:func:`_notify_dropped`): a build of the earlier version read them.

    Returns:
        The stale keys a store error left (logged; the rest of a partition whose manifest
        could not be deleted is left whole): the new delivery is published all the same,
        and its ledger record names them so the next delivery of the key removes them.
    """
    current, previous = set(current), set(previous)
    partitions = {_dataset_day(key) for key in current} - {None}
    arrived = partitions - {_dataset_day(key) for key in previous}
    _void_withdrawals(store, arrived, landing_key, current)
    # a day the key still publishes to whose new members an earlier re-delivery dropped
    # (named in the day's notice, _notify_dropped): published again, no longer withdrawn
    renamed = {_dataset_day(k) for k in current - previous if _is_data_key(k)} - arrived
    _void_withdrawals(store, renamed - {None}, landing_key, current, named_only=True)
    stale = [key for key in previous - current if zone_of(key) == VALIDATED]
    if not (same_delivery or one_day_key):
        ours = _same_delivery_partitions(store, stale, partitions, delivery)
        retried = set(leftovers)
        stale = [key for key in stale if _dataset_day(key) in partitions | ours or key in retried]
    left: list[str] = []
    kept: set[tuple[str, date] | None] = set()  # partitions whose manifest stayed
    kept |= _notify_dropped(store, stale, partitions, landing_key, run_id)
    for key in sorted(stale, key=lambda key: (not is_delivery_manifest(key), key)):
        moved = _dataset_day(key)
        if moved in kept:
            left.append(key)
            continue
        logger.info("removing %s: the new delivery under the same key has no such member", key)
        # a delivery manifest of a partition the key no longer publishes to: a withdrawal
        withdrawn = moved if is_delivery_manifest(key) and moved not in partitions else None
        try:
            if withdrawn is not None:  # noted first: downstream acts on the notice only
                dropped = [k for k in stale if _dataset_day(k) == moved and _is_data_key(k)]
                _notify_withdrawal(
                    store, withdrawn, key, landing_key, run_id, partitions, dropped=dropped
                )
            store.delete(key)
        except EtlError as exc:
            logger.warning("%s not removed (the next delivery of the key retries): %s", key, exc)
            left.append(key)
            if is_delivery_manifest(key):
                kept.add(moved)
            continue
        if withdrawn is not None:
            logger.warning(
                "%s: the delivery its landing key published there is withdrawn (the key "
                "now publishes to another partition; noted at %s); if that day was already "
                "transformed and loaded and has no other delivery, the next "
                "`etl-data-pipeline run` withdraws its curated output and loaded rows",
                validated_prefix(*withdrawn), withdrawal_notice_key(*withdrawn),
            )  # fmt: skip
    return left


def _notify_dropped(
    store: ObjectStore,
    stale: Sequence[str],
    partitions: set[tuple[str, date] | None],
    landing_key: str,
    run_id: str,
) -> set[tuple[str, date] | None]:
    """Before a re-delivery removes members its key published on a day it still publishes
    to (a corrected archive renaming them), name them, with their ETags, in the day's
    withdrawal notice: a build of the earlier version read them, and when the key then
    moves off the day before a rebuild, that notice (merged into the move's) is what
    withdraws that build downstream. A rebuild from the new version no longer reads them:
    the notice is then spent and removed downstream. ``emptied`` stays false (the day has
    this delivery). Returns the partitions whose notice could not be written: their
    members are left (named in the ledger record, retried by the next delivery), as a
    moved partition's are.
    """
    dropped: dict[tuple[str, date], list[str]] = {}
    for key in stale:
        partition = _dataset_day(key)
        if partition in partitions and partition is not None and _is_data_key(key):
            dropped.setdefault(partition, []).append(key)
    failed: set[tuple[str, date] | None] = set()
    moved_to = tuple(sorted(partition_prefix(VALIDATED, *p) for p in partitions if p))
    for partition, keys in sorted(dropped.items()):
        keys.sort()
        etags = _etags(store, partition, keys, delivery_manifest_key(*partition, landing_key))

        def noticed(
            earlier: WithdrawalNotice | None,
            partition: tuple[str, date] = partition,
            keys: Sequence[str] = keys,
            etags: dict[str, str] = etags,
        ) -> WithdrawalNotice | NoChange:
            if earlier is not None and not earlier.data_keys:
                return NO_CHANGE  # of unknown keys (judged by its time): left as it is
            named = _merged(earlier.data_keys if earlier else tuple(keys), tuple(keys))
            # one read of none (gone: a redo after a kill that followed their removal)
            # keeps the ETag the notice recorded before they were removed
            before = earlier.data_etags if earlier else {}
            kept = {k: before[k] for k in keys if k not in etags and before.get(k)}
            return WithdrawalNotice(
                dataset=partition[0],
                dt=partition[1].isoformat(),
                landing_key=landing_key,
                withdrawn_at=utc_timestamp(datetime.now(UTC)),
                run_id=run_id,
                moved_to=moved_to,
                data_keys=named,
                emptied=False,
                data_etags=_merged_etags(earlier, named, keys, {**kept, **etags}),
            )

        try:
            _notices(store).update(withdrawal_notice_key(*partition), noticed)
        except EtlError as exc:
            logger.warning(
                "%s: the members %s no longer delivers there (%s, ...) are left: the day's "
                "withdrawal notice naming them could not be written (the next delivery of "
                "the key retries): %s", validated_prefix(*partition), landing_key, keys[0], exc,
            )  # fmt: skip
            failed.add(partition)
    return failed


def _is_data_key(key: str) -> bool:
    """Whether a validated key is a delivered file (not a manifest nor a quality report)."""
    return not is_delivery_manifest(key) and not key.endswith(QUALITY_SUFFIX)


def void_withdrawals(store: ObjectStore, outputs: Iterable[str], landing_key: str) -> None:
    """What :func:`remove_stale` does for the partitions a key publishes to for the first
    time, for a key's first delivery (nothing earlier to remove): a data key a move off the
    day withdrew that the new delivery publishes again (another landing key with the same
    member name: a folder-dated key's own day after a misdated key moved off it) is
    dropped from the day's notice. Left there, downstream would take a build that read the
    new file for a build of the withdrawn delivery, and withdraw it once the day's
    validated partition is gone for another reason (a lifecycle rule)."""
    current = set(outputs)
    _void_withdrawals(store, {_dataset_day(key) for key in current}, landing_key, current)


def _void_withdrawals(
    store: ObjectStore,
    arrived: set[tuple[str, date] | None],
    landing_key: str,
    current: set[str],
    *,
    named_only: bool = False,
) -> None:
    """Remove the withdrawal notice of each partition in ``arrived`` (the key publishes
    there now, not before) that is of ``landing_key``'s move off it: the key came back (a
    second contract fix), so the notice is no longer true, and kept it would let downstream
    withdraw the day once its validated partition is gone for another reason (a lifecycle
    rule). A notice naming data keys loses those ``current`` publishes (the key's), and is
    removed only when none is left: it names the other keys moved off the day too, whose
    withdrawal stays. Another key's notice stays. A store error leaves the notice (said).

    ``named_only``: the key published on those days before too (members an earlier
    re-delivery dropped, published again): only the data keys a notice names are dropped
    from it; a notice naming none (of unknown keys) is left as it is."""
    notices = _notices(store)
    for partition in sorted(p for p in arrived if p is not None):
        key = withdrawal_notice_key(*partition)
        try:
            for _ in range(_VOID_ATTEMPTS):  # a compare-and-put lost to another move: again
                found = notices.read(key)
                if found is None:
                    break
                notice = found.value
                if named_only and not notice.data_keys:
                    break  # of unknown keys, judged by its time: not this delivery's to void
                left = tuple(k for k in notice.data_keys if k not in current)
                void = bool(notice.data_keys) or notice.landing_key == landing_key
                if notice.data_keys and left == notice.data_keys:
                    void = False  # names none of the keys this one publishes there again
                if not (void or notice.emptied):
                    break  # another key's notice, nothing in it changed by this delivery
                try:
                    if void and not left:
                        store.delete_if(key, etag=found.etag)
                    else:  # other keys' withdrawals stay noted; the day has a delivery now
                        kept = left if void else notice.data_keys
                        etags = {k: e for k, e in notice.data_etags.items() if k in kept}
                        changed = replace(notice, data_keys=kept, emptied=False, data_etags=etags)
                        notices.put(key, changed, expect=found)
                except ObjectConflictError:
                    continue
                logger.info(
                    "%s: %s publishes there (again), %s", key, landing_key,
                    "the notice removed" if void and not left
                    else "its data keys dropped from the notice" if void
                    else "the day no longer emptied by its move",
                )  # fmt: skip
                break
            else:
                raise ObjectConflictError(f"{key} changed by another move at every attempt")
        except EtlError as exc:
            logger.warning(
                "%s not removed: %s publishes to %s again, so a later loss of that "
                "partition (a lifecycle rule) would withdraw its day downstream; delete it "
                "by hand: %s", key, landing_key, validated_prefix(*partition), exc,
            )  # fmt: skip


def _notify_withdrawal(
    store: ObjectStore,
    moved: tuple[str, date],
    manifest_key: str,
    landing_key: str,
    run_id: str,
    published: set[tuple[str, date] | None],
    *,
    dropped: Sequence[str] = (),
) -> None:
    """Write (replace) the withdrawal notice of ``moved``: ``landing_key``'s delivery (its
    manifest ``manifest_key``, whose data keys the notice names) leaves that partition for
    the ``published`` ones. ``dropped``: the key's other data keys removed from it with the
    manifest (members an earlier re-delivery dropped there whose own notice could not be
    written, left for this one: a build of that earlier version read them), named too.

    The notice records the ETag of the object withdrawn under each data key (listed while
    the delivery is still published): downstream keeps a build that read the key with
    another ETag, a new delivery under it (the key moved back, its void failed). A key
    whose object cannot be listed is named without one (judged by key, as before).

    The notice replaces the day's earlier one (another key's move off the day) but keeps
    naming the data keys that one withdrew, with their ETags: a build that read only those
    is still of a withdrawn delivery. A key both withdrew with other objects (a failed
    void, a second move) is named without an ETag: either object's build is withdrawn. A
    notice of unknown keys (written before notices named them, or unreadable) makes the
    new one go by its time only, as it did.

    ``emptied`` is checked again once the notice is written: another key's first delivery
    published after the day was listed, whose void ran before the notice was there to
    clear, is seen then (its manifest is written before its void runs), and the notice no
    longer says the day emptied. A check that fails leaves it (said).

    Raises:
        EtlError: the store would not read the manifest, the earlier notice or write the
            notice (the caller keeps the manifest).
    """
    dataset, dt = moved
    try:
        data_keys = DeliveryManifest.from_json(
            store.read_bytes(manifest_key), key=manifest_key
        ).data_keys
    except (ObjectNotFoundError, ArtifactError):
        data_keys = ()  # nothing readers see there: the notice then goes by its time only
    if data_keys:
        data_keys = tuple(sorted(set(data_keys) | set(dropped)))
    moved_to = tuple(
        sorted(partition_prefix(VALIDATED, *partition) for partition in published if partition)
    )
    withdrawn = _etags(store, moved, data_keys, manifest_key)
    try:  # the day's last delivery: a day never built downstream is withdrawn, not lost
        emptied = not _other_deliveries(store, dataset, dt, manifest_key)
    except EtlError as exc:  # unknown: downstream then never takes the day for withdrawn
        logger.warning("%s: its other deliveries could not be listed: %s", manifest_key, exc)
        emptied = False

    def noticed(earlier: WithdrawalNotice | None) -> WithdrawalNotice:
        # another key's move off the day, not voided: still withdrawn, still named
        keys = (
            _merged(earlier.data_keys, data_keys)
            if earlier is not None and data_keys
            else data_keys
        )
        etags = _merged_etags(earlier, keys, data_keys, withdrawn)
        return WithdrawalNotice(
            dataset=dataset,
            dt=dt.isoformat(),
            landing_key=landing_key,
            withdrawn_at=utc_timestamp(datetime.now(UTC)),
            run_id=run_id,
            moved_to=moved_to,
            data_keys=keys,
            emptied=emptied,
            data_etags=etags,
        )

    key = withdrawal_notice_key(dataset, dt)
    _notices(store).update(key, noticed)
    if emptied:
        _check_emptied(store, moved, manifest_key)


def _other_deliveries(store: ObjectStore, dataset: str, dt: date, manifest_key: str) -> bool:
    """Whether the day has a delivery manifest besides ``manifest_key`` (one listing)."""
    return any(
        is_delivery_manifest(info.key) and info.key != manifest_key
        for info in store.list(deliveries_prefix(dataset, dt))
    )


def _check_emptied(store: ObjectStore, moved: tuple[str, date], manifest_key: str) -> None:
    """After the notice of ``moved`` saying its move emptied the day was written: clear
    ``emptied`` if another delivery is published there now. One landing between the move's
    listing and its notice ran its void before the notice was there; its manifest, written
    before that void, is listed here (a delivery landing later clears the notice itself)."""
    key = withdrawal_notice_key(*moved)
    try:
        if not _other_deliveries(store, *moved, manifest_key):
            return

        def cleared(notice: WithdrawalNotice | None) -> WithdrawalNotice | NoChange:
            if notice is None or not notice.emptied:
                return NO_CHANGE
            return replace(notice, emptied=False)

        _notices(store).update(key, cleared)
    except EtlError as exc:
        logger.warning(
            "%s may say its move left the day no delivery while another landed on it "
            "meanwhile (it could not be checked again: %s); a backfill of that day, its "
            "input lost, then skips it as withdrawn", key, exc,
        )  # fmt: skip
        return
    logger.info("%s: another delivery landed on the day during the move: not emptied", key)


def _etags(
    store: ObjectStore, moved: tuple[str, date], data_keys: Sequence[str], manifest_key: str
) -> dict[str, str]:
    """The ETag of each of ``data_keys`` (one delivery's, still published on the day
    ``moved``: its manifest ``manifest_key`` is removed after the notice): a HEAD each for a
    few, one listing of the partition for more (an archive of thousands of members is a
    few listing pages, not a request per member). A key the store would not say it of is
    left without one, judged by key downstream (said)."""
    if len(data_keys) > _ETAG_HEADS:
        wanted = set(data_keys)
        try:
            listed = {
                info.key: info.etag
                for info in store.list(validated_prefix(*moved))
                if info.key in wanted
            }
        except EtlError as exc:
            logger.warning(
                "%s: the ETags of its data keys could not be listed (its withdrawal notice "
                "names them by key only): %s", manifest_key, exc,
            )  # fmt: skip
            return {}
        return {key: etag for key, etag in listed.items() if etag}
    etags: dict[str, str] = {}
    for key in data_keys:
        try:
            etag = store.head(key).etag
        except ObjectNotFoundError:
            continue  # nothing readers see there: no object to tell a later one from
        except EtlError as exc:
            logger.warning(
                "%s: the ETag of %s could not be read (its withdrawal notice names it by "
                "key only): %s", manifest_key, key, exc,
            )  # fmt: skip
            continue
        if etag:
            etags[key] = etag
    return etags


_ETAG_HEADS = 8
"""At most how many data keys' ETags a move reads with a HEAD each (more: one listing)."""


def _merged_etags(
    earlier: WithdrawalNotice | None,
    keys: Sequence[str],
    data_keys: Sequence[str],
    withdrawn: dict[str, str],
) -> dict[str, str]:
    """The ETags of the notice naming ``keys``: this move's (``withdrawn``, of its
    ``data_keys``) and the earlier notice's of the keys it named; a key both withdrew with
    other objects, or one without an ETag in either, has none (judged by key)."""
    before: dict[str, str] = {}
    if earlier is not None:
        before = {k: e for k, e in earlier.data_etags.items() if k in earlier.data_keys}
        named = set(earlier.data_keys)
    else:
        named = set()
    etags = {}
    for key in keys:
        if key in data_keys:
            etag = withdrawn.get(key)
            if etag and (key not in named or before.get(key) == etag):
                etags[key] = etag
        elif key in before:
            etags[key] = before[key]
    return etags


_VOID_ATTEMPTS = 5
"""Compare-and-puts a void of a notice tries against other keys' moves off the day."""


def _notices(store: ObjectStore) -> Records[WithdrawalNotice]:
    """The days' withdrawal notices, changed by compare-and-put only: two keys moved off
    one day at once (a scan's workers) are both named, neither write replacing the other."""
    return Records(store, decode=_decode_notice, encode=WithdrawalNotice.to_json)


def _decode_notice(data: bytes, key: str) -> WithdrawalNotice:
    """A stored notice; one that cannot be read as a notice of unknown data keys (a new
    move's notice then goes by its time only; a key moved back leaves it, said)."""
    try:
        return WithdrawalNotice.from_json(data, key=key)
    except ArtifactError as exc:
        logger.warning("%s cannot be read, its data keys taken as unknown: %s", key, exc)
        return WithdrawalNotice(dataset="", dt="", landing_key="", withdrawn_at="")


def _merged(earlier: tuple[str, ...], data_keys: tuple[str, ...]) -> tuple[str, ...]:
    """The data keys of two moves off one day (``()``: unknown keys, so unknown still)."""
    if not earlier:
        return ()
    return tuple(sorted(set(earlier) | set(data_keys)))


def _same_delivery_partitions(
    store: ObjectStore,
    stale: Iterable[str],
    published: set[tuple[str, date] | None],
    delivery: ObjectInfo | None,
) -> set[tuple[str, date] | None]:
    """The partitions of ``stale`` outside ``published`` whose delivery manifest of
    ``delivery``'s landing key names ``delivery``'s ETag: the same delivery published there.

    Only on a day ``published`` has (another dataset's: a contract change moved it). The key
    is dated by its arrival, and the same upload keeps its arrival day: the same bytes, so
    the same ETag, uploaded again on a later day (after a ``quarantine release`` marked the
    key's record released) are that day's delivery, and the first day keeps its own.
    """
    if delivery is None:
        return set()
    days = {partition[1] for partition in published if partition is not None}
    found: set[tuple[str, date] | None] = set()
    for partition in {_dataset_day(key) for key in stale} - published - {None}:
        assert partition is not None
        if partition[1] not in days:
            continue  # another day's upload of the same bytes: its own delivery, kept
        manifest_key = delivery_manifest_key(*partition, delivery.key)
        try:
            manifest = DeliveryManifest.from_json(store.read_bytes(manifest_key), key=manifest_key)
        except (ObjectNotFoundError, ArtifactError):
            continue  # nothing readers see there, or not ours to judge: left as it is
        if manifest.delivery.key == delivery.key and manifest.delivery.etag == delivery.etag:
            found.add(partition)
    return found


def _dataset_day(key: str) -> tuple[str, date] | None:
    """The dataset and date of a validated key's partition."""
    found = partition_of(key)
    return (found.dataset, found.dt) if found is not None else None


def _name_problem(member: str, key: str) -> str | None:
    try:
        validate_key(key)
    except InvalidKeyError as exc:
        return str(exc)
    for part in member.split("/"):
        if part.startswith("."):
            return f"{part!r} is a hidden name, which readers of validated/ skip"
        if len(part.encode()) > _MAX_NAME_BYTES:
            return f"a name of {len(part.encode())} bytes is too long (at most {_MAX_NAME_BYTES})"
    if member.endswith(SIDECAR_SUFFIXES):
        return f"names ending in {', '.join(SIDECAR_SUFFIXES)} are reserved for reports and records"
    if len(key.encode()) > _MAX_KEY_BYTES:
        return f"the output key would be {len(key.encode())} bytes (at most {_MAX_KEY_BYTES})"
    return None
