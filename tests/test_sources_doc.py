"""docs/sources.md stays true: the dataset contract and the API source it shows, copied as
written into a configuration directory, are valid."""

from __future__ import annotations

import re
from pathlib import Path

from repo_layout import REPO

from etl_core.contracts import check_contracts

DOC = REPO / "docs/sources.md"
SNIPPET = re.compile(r"^```toml\n# ((?:datasets|sources)/\w+\.toml)\n(.*?)^```$", re.M | re.S)


def test_the_docs_contract_and_source_are_valid_as_written(tmp_path: Path) -> None:
    snippets = dict(SNIPPET.findall(DOC.read_text()))
    assert set(snippets) == {"datasets/shop_orders.toml", "sources/shop.toml"}
    for name, text in snippets.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    # the source's second endpoint lands into a dataset the page does not spell out: the
    # orders' contract, renamed, stands for it
    items = snippets["datasets/shop_orders.toml"].replace("shop_orders", "shop_order_items")
    items = items.replace("api/shop/orders", "api/shop/order_items").replace(
        '"orders_', '"order_items_'
    )
    (tmp_path / "datasets/shop_order_items.toml").write_text(items)

    checked = check_contracts(tmp_path, environ={"SHOP_CLIENT_SECRET": "s3cret-value"})

    assert checked.valid, (checked.summary, checked.errors)
    assert set(checked.datasets) == {"shop_orders", "shop_order_items"}
    assert checked.sources == ("shop",)
