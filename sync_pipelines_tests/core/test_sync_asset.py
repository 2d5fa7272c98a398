"""A sync asset names its page source by a typed reference, checked when the definitions load."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import dagster as dg
import pytest
import sqlalchemy as sa

from sync_pipelines.core.dg.assets import sync_asset
from sync_pipelines.core.entities import entity_table

TABLE = entity_table(sa.MetaData(), "typed_fetch", "things", sa.Column("thing_id", sa.BigInteger, nullable=False),
                     key=["thing_id"])
PARTITIONS = dg.DynamicPartitionsDefinition(name="typed_fetch_accounts")


class Session:
    def things(self, since=None):
        yield [{"thing_id": 1}]

    def shop(self):  # not a page source: takes no `since`
        return {}


def declare(fetch):
    return sync_asset(provider="typed_fetch", name="things", stream_table=TABLE, fetch=fetch, client_key="client",
                      partitions_def=PARTITIONS, description="things")


def test_a_method_of_the_session_is_accepted():
    assert declare(Session.things).key == dg.AssetKey(["typed_fetch", "things"])


@pytest.mark.parametrize("fetch, problem", [
    ("things", "must be a callable"),  # the old string wiring
    (Session.shop, "cannot be called with (session, since)"),
    (lambda session: session.things, "cannot be called with (session, since)"),
])
def test_anything_else_fails_when_the_definitions_load(fetch, problem):
    with pytest.raises(TypeError, match=re.escape(problem)) as raised:
        declare(fetch)
    assert str(raised.value).startswith("typed_fetch/things: fetch")


def test_a_missing_method_fails_at_import_not_at_run_time(tmp_path):
    """Naming a page source the client does not have stops the code location from loading."""
    module = tmp_path / "broken_provider_assets.py"
    module.write_text(textwrap.dedent("""
        import dagster as dg
        from sync_pipelines.core.dg.assets import sync_asset
        from sync_pipelines.defs.shopify import tables
        from sync_pipelines.defs.shopify.client import ShopifySession

        orders = sync_asset(provider="shopify", name="orders", stream_table=tables.ORDERS,
                            fetch=ShopifySession.order, client_key="shopify",
                            partitions_def=dg.DynamicPartitionsDefinition(name="x"), description="typo")
    """))
    result = subprocess.run([sys.executable, "-c", "import broken_provider_assets"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "AttributeError" in result.stderr and "'order'" in result.stderr
