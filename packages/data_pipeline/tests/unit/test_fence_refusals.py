"""The refusals of a load and of a publish whose lease's tokens restarted: both explain it
in the same words, each ends with its exact recovery, and the publish's says the day's
load is fenced alike in the database (its own refusal then gives that statement)."""

from __future__ import annotations

import pickle
from datetime import date

from data_pipeline.errors import LoadFencedError, PublishFencedError
from etl_core.errors import LeaseLostError

DAY = date(2026, 11, 1)
KEY = "_state/data_pipeline/leases/pos/dt=2026-11-01.json"
STORE = "s3://lake/o'brien"
MANIFEST = "s3://lake/o'brien/curated/pos/dt=2026-11-01/_manifest.json"
RESTARTED = (
    "yet its lease is still held at token 1: no holder has token 2, the lease's tokens "
    "restarted (its object in the store was deleted, or the store re-created at its URL, "
    "while "
)


def load_refused() -> LoadFencedError:
    return LoadFencedError("retail_sales", DAY, 1, 2, key=KEY, store=STORE, restarted=True)


def publish_refused() -> PublishFencedError:
    return PublishFencedError("pos", DAY, 1, 2, key=KEY, manifest=MANIFEST, generation="g2")


def test_a_load_and_a_publish_refused_for_restarted_tokens_explain_it_in_the_same_words() -> None:
    load, publish = str(load_refused()), str(publish_refused())

    assert f"{RESTARTED}the database's load fence kept token 2)" in load
    assert f"{RESTARTED}the partition's curated manifest kept token 2)" in publish


def test_a_load_refused_for_restarted_tokens_ends_with_the_statement_removing_its_fence() -> None:
    assert str(load_refused()).endswith(
        "DELETE FROM etl_load_fence WHERE store IN ('s3://lake/o''brien', '') AND table_name = "
        "'retail_sales' AND dt = '2026-11-01' AND lease = "
        f"'{KEY}' AND token = 2"
    )


def test_a_publish_refused_for_restarted_tokens_says_the_days_load_is_fenced_alike() -> None:
    said = str(publish_refused())

    assert (
        "a dataset loaded into the database has the day's load fence at the old tokens too: "
        "its next load is refused alike, ending with the statement that removes that fence"
    ) in said
    assert said.endswith("then run `etl-data-pipeline transform --dataset pos --date 2026-11-01`")


def test_both_refusals_survive_pickling_with_their_fields() -> None:
    load = pickle.loads(pickle.dumps(load_refused()))
    publish = pickle.loads(pickle.dumps(publish_refused()))

    assert isinstance(load, LeaseLostError)
    assert (load.store, load.table, load.newer, load.restarted) == (STORE, "retail_sales", 2, True)
    assert str(load) == str(load_refused())
    assert (publish.generation, publish.newer, publish.manifest) == ("g2", 2, MANIFEST)
