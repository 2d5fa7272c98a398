"""The code location is every provider folder's Definitions, found by scanning `sync_pipelines/defs`;
client settings are resource config, unset ones read from the environment at run time."""

from __future__ import annotations

import importlib
from pathlib import Path

import dagster as dg
import pytest

from sync_pipelines.core.registry import Account
from sync_pipelines.definitions import folder_definitions
from sync_pipelines.defs.shipstation.client import ShipStationClient
from sync_pipelines.defs.shopify.client import ShopifyClient


@pytest.fixture
def defs_package(tmp_path, monkeypatch, unique):
    name = f"scanned_defs_{unique}"
    root = tmp_path / name
    for folder, source in {
        "acme": "import dagster as dg\n\n@dg.asset(key=['acme', 'things'])\ndef things():\n    return 1\n\n"
                "defs = dg.Definitions(assets=[things])\n",
        "pure_only": None,  # declarations only (e.g. webhooks), no Definitions: skipped
    }.items():
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
        if source:
            (root / folder / "definitions.py").write_text(source)
    (root / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module(name)


def test_a_folder_with_definitions_is_loaded_without_being_listed(defs_package):
    (acme,) = folder_definitions(defs_package)
    assert dg.AssetKey(["acme", "things"]) in acme.resolve_asset_graph().get_all_asset_keys()


def test_a_definitions_module_without_defs_fails_the_load(defs_package):
    broken = Path(defs_package.__path__[0]) / "broken"
    broken.mkdir()
    (broken / "__init__.py").write_text("")
    (broken / "definitions.py").write_text("everything = 1\n")
    importlib.invalidate_caches()
    with pytest.raises(TypeError, match=r"broken.definitions must export `defs`"):
        folder_definitions(defs_package)


def test_the_code_location_holds_every_provider_folder():
    from sync_pipelines.definitions import defs

    groups = {node.group_name for node in defs.resolve_asset_graph().asset_nodes}
    assert {"shipstation", "shopify", "operations"} <= groups
    repo = defs.get_repository_def()
    assert {"shipstation_sync", "shopify_apply_webhooks", "sync_status_report", "inbox_retention"} <= {
        job.name for job in repo.get_all_jobs()}


def account(monkeypatch) -> Account:
    monkeypatch.setenv("SETTINGS_TEST_KEY", "secret")
    return Account("p", "shop-a.myshopify.com", "A", True, "SETTINGS_TEST_KEY", True, "30min", 1)


def test_unset_client_settings_come_from_the_environment_at_run_time(monkeypatch):
    from sync_pipelines.definitions import defs

    shipstation, shopify = defs.resources["shipstation"], defs.resources["shopify"]
    for name in ("SHIPSTATION_BASE_URL", "SHOPIFY_BASE_URL_TEMPLATE", "SHOPIFY_API_VERSION"):
        monkeypatch.delenv(name, raising=False)
    with shipstation.session(account(monkeypatch)) as session:
        assert session.http.base_url == "https://api.shipstation.com"
    with shopify.session(account(monkeypatch)) as session:
        assert session.http.base_url == "https://shop-a.myshopify.com/admin/api/2025-10"

    # Set after the code location loaded: still used (read when a run opens a session).
    monkeypatch.setenv("SHIPSTATION_BASE_URL", "http://127.0.0.1:9/ss")
    monkeypatch.setenv("SHOPIFY_BASE_URL_TEMPLATE", "http://127.0.0.1:9/shops/{shop}")
    monkeypatch.setenv("SHOPIFY_API_VERSION", "2026-01")
    with shipstation.session(account(monkeypatch)) as session:
        assert session.http.base_url == "http://127.0.0.1:9/ss"
    with shopify.session(account(monkeypatch)) as session:
        assert session.http.base_url == "http://127.0.0.1:9/shops/shop-a.myshopify.com/admin/api/2026-01"

    # Configured values win over the environment.
    with ShipStationClient(base_url="http://x").session(account(monkeypatch)) as session:
        assert session.http.base_url == "http://x"
    configured = ShopifyClient(base_url_template="http://y/{shop}", api_version="2024-01")
    with configured.session(account(monkeypatch)) as session:
        assert session.http.base_url == "http://y/shop-a.myshopify.com/admin/api/2024-01"
