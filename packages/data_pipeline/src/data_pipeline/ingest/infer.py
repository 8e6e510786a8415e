"""``ingest infer``: a dataset contract to start from, proposed from sampled records.

The records come from the API (the first pages of the endpoint, with the source's
auth, rate limit and retries; nothing archived, landed or committed) or from an
archived run (pages checked against its manifest). Each top-level field becomes a
column of the narrowest type every sampled value fits (:mod:`.profile`), ``required``
when every sampled record has a value; nested objects and arrays are ``string``
columns (flagged in a comment). With ``provenance = true`` the provenance fields are
declared too. The text is TOML the contract loader reads as it is; it is a start, to
be reviewed, not a verdict.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote

from data_pipeline.errors import ApiRequestError, ApiResponseError
from data_pipeline.ingest.chunks import encode_lines
from data_pipeline.ingest.client import ApiClient
from data_pipeline.ingest.documents import MISSING, extract_records, lookup, parse_body
from data_pipeline.ingest.pagination import Page, PageRequest, paginator_for
from data_pipeline.ingest.profile import FieldProfile
from data_pipeline.ingest.records import refusal
from data_pipeline.ingest.replay import archived_pages
from etl_core.contracts import PROVENANCE_FIELDS, Endpoint, Source
from etl_core.layout import landing_api_chunk_name, landing_api_prefix, split_landing_key
from etl_core.storage import ObjectStore

__all__ = ["Sample", "columns", "contract_text", "sample_api", "sample_run"]

MAX_SAMPLE_PAGES = 100
"""Pages ``ingest infer`` requests at most."""


@dataclass
class Sample:
    """Records sampled: their profile, how many items were left out, and where from."""

    profile: FieldProfile
    origin: str
    refused: int = 0

    def add(self, items: list[Any], endpoint: Endpoint) -> None:
        """Profile the items that would land."""
        for item in items:
            if refusal(item, endpoint) is not None:
                self.refused += 1
            else:
                self.profile.add(item)


def sample_api(client: ApiClient, source: Source, endpoint: Endpoint, pages: int) -> Sample:
    """Up to ``pages`` pages of ``endpoint`` (a child endpoint: of its first parent record).

    Raises:
        ApiError: a request failed, or a body is not JSON with a records array.
    """
    pages = max(1, min(pages, MAX_SAMPLE_PAGES))
    path = endpoint.path
    if endpoint.parent is not None:
        path = _child_path(client, source, endpoint)
    sample = Sample(FieldProfile(), f"{pages} page(s) of {source.base_url}{path}")
    base = endpoint.query(source.params)
    incremental = endpoint.incremental
    if incremental is not None and incremental.initial_value is not None:
        base[incremental.param] = incremental.initial_value
    paginator = paginator_for(source, endpoint)
    current: PageRequest | None = paginator.first()
    for _ in range(pages):
        if current is None:
            break
        try:
            page = _get(client, source, endpoint, path, base, current)
        except ApiRequestError as exc:
            if not paginator.past_the_end(current, exc):
                raise
            break  # a page made up past the API's end, refused: the sample is whole
        if current.prior is not None and paginator.repeats(current, _lines(page.records)):
            break  # the API's last page again: not sampled twice
        sample.add(page.records, endpoint)
        following = paginator.next(current, page)
        if following is not None and paginator.probes(following):
            following = paginator.with_prior(following, _lines(page.records))
        current = following
    return sample


def _lines(records: list[Any]) -> bytes | None:
    """``records`` as landing lines (to tell a page the API repeats); ``None`` when one is
    nested too deep to write."""
    try:
        return encode_lines(records)
    except RecursionError:
        return None


def sample_run(
    store: ObjectStore, source: Source, endpoint: Endpoint, run: str, dt: date
) -> Sample:
    """Every record page of an archived run (checked against its manifest).

    Raises:
        ReplayRefusedError: no such run, or it is not complete.
        RawArchiveCorruptError: a page does not match the manifest.
        ApiResponseError: a page is not JSON with a records array.
    """
    sample = Sample(FieldProfile(), f"archived run {run} ({dt})")
    for entry, body in archived_pages(store, source, endpoint, run, dt):
        where = {"source": source.source, "endpoint": endpoint.name, "url": str(entry["url"])}
        items = extract_records(parse_body(body, **where), endpoint.records_path, **where)
        sample.add(items, endpoint)
    return sample


def _get(
    client: ApiClient,
    source: Source,
    endpoint: Endpoint,
    path: str,
    base: dict[str, str],
    request: PageRequest,
) -> Page:
    url, params = (request.url, {}) if request.url else (path, {**base, **request.params})
    response = client.get(endpoint.name, url, params)
    where = {"source": source.source, "endpoint": endpoint.name, "url": response.url}
    document = parse_body(response.body, **where)
    records = extract_records(document, endpoint.records_path, **where)
    return Page(response.url, response.headers, document, records)


def _child_path(client: ApiClient, source: Source, endpoint: Endpoint) -> str:
    """The child's path filled from the first record of its parent's first page."""
    assert endpoint.parent is not None
    parent = source.endpoint(endpoint.parent)
    first = _get(
        client,
        source,
        parent,
        parent.path,
        parent.query(source.params),
        paginator_for(source, parent).first(),
    )
    record = first.records[0] if first.records else MISSING
    path = endpoint.path
    for name in endpoint.parent_fields:
        value = lookup(record, name) if isinstance(record, dict) else MISSING
        if value is MISSING or value is None or isinstance(value, dict | list):
            raise ApiResponseError(
                f"the first record of parent endpoint {parent.name!r} has no usable {name!r} "
                f"to sample {endpoint.path!r}; sample an archived run with --run instead",
                source=source.source,
                endpoint=endpoint.name,
                url=first.url,
            )
        path = path.replace(f"{{parent.{name}}}", quote(str(value), safe=""))
    return path


def contract_text(source: Source, endpoint: Endpoint, sample: Sample) -> str:
    """A dataset contract (TOML) for ``endpoint``'s chunks with the columns sampled."""
    profile = sample.profile
    prefix = landing_api_prefix(source.source, endpoint.name)
    split = split_landing_key(
        prefix + landing_api_chunk_name(endpoint.name, date(2026, 1, 1), "r", 0)
    )
    assert split is not None
    lines = [
        f"# Proposed by `etl-data-pipeline ingest infer` from {profile.records} record(s) of "
        f"{source.source}/{endpoint.name}: {sample.origin}.",
        "# Review it: each type is the narrowest every sampled value fits; `required` marks "
        "fields every sampled record had a value for.",
    ]
    if sample.refused:
        lines.append(
            f"# {sample.refused} sampled item(s) could not land (dead letters) and were left out."
        )
    if profile.truncated:
        lines.append("# More fields than the profile keeps were seen; only the first are listed.")
    lines += [
        f"dataset = {_string(endpoint.dataset)}",
        f"source = {_string(split[0])}",
        f"pattern = {_string(endpoint.name + '_{date:%Y%m%d}_*.jsonl.gz')}",
        'format = "jsonl"',
        'packing = "gzip"',
    ]
    for name, kinds in profile.fields.items():
        lines.append("")
        nested = {"object", "array"} & set(kinds)
        if nested:
            lines.append(f"# {name}: nested {'/'.join(sorted(nested))}, kept as JSON text")
        lines += [
            "[[columns]]",
            f"name = {_string(name)}",
            f"type = {_string(profile.proposed_type(name))}",
        ]
        if _always_set(profile, name):
            lines.append("required = true")
    if endpoint.provenance:
        lines += ["", "# added by the platform (provenance = true)"]
        for name, types in PROVENANCE_FIELDS.items():
            lines += ["[[columns]]", f"name = {_string(name)}", f"type = {_string(types[0])}"]
    return "\n".join(lines) + "\n"


def _always_set(profile: FieldProfile, name: str) -> bool:
    kinds = profile.fields.get(name, {})
    return (
        bool(profile.records)
        and kinds.get("null", 0) == 0
        and profile.present(name) == profile.records
    )


def _string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def columns(sample: Sample) -> Iterator[dict[str, Any]]:
    """The proposed columns as data (``--json``)."""
    profile = sample.profile
    for name, kinds in profile.fields.items():
        yield {
            "name": name,
            "type": profile.proposed_type(name),
            "required": _always_set(profile, name),
            "seen": dict(kinds),
        }
