"""Nesting deeper than JSON is read or written here never stops a run: a record too deep to
write is a dead letter of its own (the rest of its page lands), a body too deep to read a
dead letter page; with the page reader and without."""

from __future__ import annotations

import json
import shutil

import pytest

from .conftest import Fault
from .test_ingest_dead_letters import PAGED, dead_letters


def deep_page(api, first: int, depth: int) -> bytes:
    """The page of five records from ``first``, the second with a value ``depth`` levels deep."""
    records = [json.dumps(r) for r in api.records[first : first + 5]]
    records[1] = records[1][:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    return ('{"data": [' + ", ".join(records) + "]}").encode()


@pytest.mark.parametrize("read_aside", [True, False])
def test_a_record_too_deep_to_write_is_set_aside_and_its_page_lands_the_rest(
    workspace, api, read_aside
) -> None:
    workspace.read_aside = read_aside
    workspace.source(PAGED, endpoints=("items",))
    # 1,010 levels: orjson reads the body (1,024 at most), neither encoder writes the record
    api.faults.append(Fault("/page", 200, body=deep_page(api, 10, 1010), after=2))

    [outcome] = workspace.ingest("items")

    assert workspace.landed("items") == api.records[:11] + api.records[12:]
    assert outcome.dead_letters == 1
    [letter] = dead_letters(workspace)
    assert (letter["reason"], letter["page"], letter["position"]) == ("too_deep", 2, 1)
    assert "nested deeper" in letter["error"]
    deep = json.dumps(api.records[11], ensure_ascii=False)[:-1] + ', "deep": '
    assert letter["raw_text"] == deep + "[" * 1010 + "]" * 1010 + "}"  # written level by level


@pytest.mark.parametrize("read_aside", [True, False])
def test_a_body_too_deep_to_read_is_a_dead_letter_page_and_the_walk_goes_on(
    workspace, api, read_aside
) -> None:
    workspace.read_aside = read_aside
    workspace.source(PAGED, endpoints=("items",))
    api.faults.append(Fault("/page", 200, body=deep_page(api, 10, 1100), after=2))

    [outcome] = workspace.ingest("items")

    assert workspace.landed("items") == api.records[:10] + api.records[15:]
    assert outcome.dead_letters == 1
    [letter] = dead_letters(workspace)
    assert (letter["reason"], letter["page"], letter["position"]) == ("too_deep", 2, None)
    assert "shop/items" in letter["error"]
    assert "page=3" in letter["url"]


@pytest.mark.parametrize("depth", [1010, 1100])
def test_replay_sets_aside_what_the_run_set_aside_and_lands_the_same_lines(
    workspace, api, depth
) -> None:
    from .test_ingest_replay_infer import RUN, chunks, replay

    workspace.source(PAGED, endpoints=("items",))
    api.faults.append(Fault("/page", 200, body=deep_page(api, 10, depth), after=2))
    workspace.ingest("items", run_id=RUN)
    landed, letters = chunks(workspace), dead_letters(workspace)
    for key in landed:
        workspace.store.delete(key)

    result = replay(workspace)

    assert result.returncode == 3, result.stderr  # dead letters
    assert chunks(workspace) == landed
    assert dead_letters(workspace) == letters


@pytest.mark.parametrize("depth", [600, 960])
def test_a_record_deep_enough_for_the_standard_library_lands_the_same_with_the_reader_or_not(
    workspace, api, depth
) -> None:
    # the page reader's child writes from a shallower stack than the walk: at depths the
    # standard library writes in one but not the other, the landing bytes differed
    from .test_ingest_replay_infer import RUN, chunks

    workspace.source(PAGED, endpoints=("items",))
    landed = {}
    for read_aside in (True, False):
        workspace.read_aside = read_aside
        api.faults[:] = [Fault("/page", 200, body=deep_page(api, 10, depth), after=2)]
        [outcome] = workspace.ingest("items", run_id=RUN)
        landed[read_aside] = chunks(workspace)
        assert outcome.dead_letters == 1, read_aside
        [letter] = dead_letters(workspace)
        assert (letter["reason"], letter["page"], letter["position"]) == ("too_deep", 2, 1)
        shutil.rmtree(workspace.store_dir)
        workspace.store_dir.mkdir()

    assert landed[True] == landed[False]


@pytest.mark.parametrize(("depth", "position"), [(600, 1), (960, 1), (1010, None)])
def test_a_body_the_standard_library_reads_is_set_aside_by_its_depth_alone(
    workspace, api, depth, position
) -> None:
    # a number of 19 digits: the standard library reads the body, as deep as the caller's
    # stack lets it; the walk (here, under pytest) and replay (a CLI) read it alike
    from .test_ingest_replay_infer import RUN, chunks, replay

    workspace.source(PAGED, endpoints=("items",))
    body = deep_page(api, 10, depth).replace(
        b'{"data": [', b'{"n": 1234567890123456789012, "data": ['
    )
    api.faults.append(Fault("/page", 200, body=body, after=2))
    workspace.ingest("items", run_id=RUN)
    landed, letters = chunks(workspace), dead_letters(workspace)
    assert [(d["reason"], d["position"]) for d in letters] == [("too_deep", position)]
    for key in landed:
        workspace.store.delete(key)

    result = replay(workspace)

    assert result.returncode == 3, result.stderr
    assert chunks(workspace) == landed
    assert dead_letters(workspace) == letters
