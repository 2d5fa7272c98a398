"""Shopify fixtures: the Admin API sandbox, the webhook receiver, registered shops."""

from __future__ import annotations

import dagster as dg
import pytest

from sync_pipelines.core.registry import upsert_account
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.defs.shopify.assets import shops
from sync_pipelines.defs.shopify.client import ShopifyClient
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.server import serve_in_thread
from sync_pipelines.sandbox.shopify import ShopifySandbox

APP_SECRET = "test-shopify-app-secret"


@pytest.fixture
def shopify_sandbox():
    box = ShopifySandbox(seed=5, bucket_size=40, leak_per_second=200.0, faults=Faults(seed=9),
                         app_secret=APP_SECRET)
    with serve_in_thread(box.app) as running:
        box.url = running.url
        yield box
    box.sender.close()


@pytest.fixture
def shopify_client(shopify_sandbox):
    return ShopifyClient(base_url_template=f"{shopify_sandbox.url}/shops/{{shop}}", page_size=50,
                         backoff_factor=0.01, backoff_max_seconds=0.2)


@pytest.fixture
def add_shop(shopify_sandbox, database_url, monkeypatch, unique, instance):
    """Register a shop (sandbox data + registry row + partition); returns its domain."""

    def add(name: str = "shop", **sizes) -> str:
        domain = f"{name}-{unique}.myshopify.com"
        token = f"shpat_{name}_{unique}"
        env_var = f"SHOPIFY_TEST_TOKEN_{name}_{unique}".upper().replace("-", "_")
        shopify_sandbox.add_shop(domain, token, **sizes)
        monkeypatch.setenv(env_var, token)
        with AppDatabase().connect() as conn:
            upsert_account(conn, "shopify", domain, credentials_env=env_var)
        instance.add_dynamic_partitions(shops.name, [domain])
        return domain

    return add


def materialize(instance, shop: str, client: ShopifyClient, assets, *, raise_on_error=True):
    return dg.materialize(
        assets, partition_key=shop, instance=instance,
        resources={"app_db": AppDatabase(), "shopify": client}, raise_on_error=raise_on_error,
    )
