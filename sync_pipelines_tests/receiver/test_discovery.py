"""Providers plug into the receiver by declaration: a folder whose `webhooks.py` exports a
`WebhookDeclaration` is served at `/webhooks/<provider>`, and the receiver names no provider."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import textwrap
import uuid
from pathlib import Path

import pytest
import requests

import sync_pipelines.defs
from sync_pipelines.core.providers import discover_providers
from sync_pipelines.core.registry import upsert_account
from sync_pipelines.core.webhooks import WebhookDeclaration, discover_webhooks
from sync_pipelines.receiver.app import create_app
from sync_pipelines.sandbox.server import serve_in_thread

RECEIVER = Path(__file__).resolve().parents[2] / "sync_pipelines" / "receiver"

# A provider nobody wrote receiver code for: hex HMAC-SHA256 in X-Acme-Signature, everything
# else in headers. Only the declaration exists.
ACME_WEBHOOKS = '''
import hashlib, hmac

import sqlalchemy as sa

from sync_pipelines.core.entities import entity_table
from sync_pipelines.core.headers import header
from sync_pipelines.core.webhooks import TopicRoute, WebhookDeclaration

THINGS = entity_table(sa.MetaData(), "acme", "things", sa.Column("thing_id", sa.BigInteger, nullable=False,
                      info={"path": "id"}), key=["thing_id"])


def verify(body, signature, secrets):
    expected = [hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets]
    return bool(signature) and any(hmac.compare_digest(e, signature) for e in expected)


WEBHOOKS = WebhookDeclaration(
    provider="acme",
    signature_header="X-Acme-Signature",
    secrets_from_env=lambda env: [env["ACME_SECRET"]] if env.get("ACME_SECRET") else [],
    verify=verify,
    account=lambda h: header(h, "X-Acme-Account"),
    delivery_id=lambda h: header(h, "X-Acme-Delivery"),
    topic=lambda h: header(h, "X-Acme-Topic"),
    triggered_at=lambda h: None,
    event_id=lambda h: None,
    kept_headers=lambda h: {"X-Acme-Topic": header(h, "X-Acme-Topic")},
    routes={"thing/changed": TopicRoute(table=THINGS, asset=("acme", "things"))},
)
'''


@pytest.fixture
def acme_package(tmp_path, monkeypatch, unique):
    """A stand-in for `sync_pipelines.defs` holding one provider folder, `acme`."""
    name = f"declared_defs_{unique}"
    folder = tmp_path / name / "acme"
    folder.mkdir(parents=True)
    (tmp_path / name / "__init__.py").write_text('"""Provider folders."""\n')
    (folder / "__init__.py").write_text('"""Acme."""\n')
    (folder / "webhooks.py").write_text(textwrap.dedent(ACME_WEBHOOKS))
    (tmp_path / name / "no_webhooks").mkdir()
    (tmp_path / name / "no_webhooks" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module(name)


def test_a_declaration_is_all_a_provider_needs_to_receive_webhooks(acme_package, database_url, conn, unique):
    declared = discover_webhooks(acme_package)
    assert list(declared) == ["acme"] and isinstance(declared["acme"], WebhookDeclaration)
    account = f"acct-{unique}"
    upsert_account(conn, "acme", account, credentials_env="UNUSED")
    app = create_app(database_url, environ={"ACME_SECRET": "s3cret"}, defs_package=acme_package)
    with serve_in_thread(app) as server:
        body = json.dumps({"id": 5}).encode()
        headers = {"X-Acme-Signature": hmac.new(b"s3cret", body, hashlib.sha256).hexdigest(),
                   "X-Acme-Account": account, "X-Acme-Delivery": str(uuid.uuid4()), "X-Acme-Topic": "thing/changed"}
        response = requests.post(f"{server.url}/webhooks/acme", data=body, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        unknown_topic = requests.post(f"{server.url}/webhooks/acme", data=body, timeout=10,
                                      headers={**headers, "X-Acme-Topic": "thing/other"})
        assert unknown_topic.json() == {"error": "unknown_topic"}
        # Only what the package declares is served.
        assert requests.post(f"{server.url}/webhooks/shopify", data=body, timeout=10).status_code == 404
    row = conn.execute("DELETE FROM sync.inbox WHERE id = %s RETURNING provider, account, topic, headers",
                       (response.json()["id"],)).fetchone()  # gone: nothing will ever apply it
    assert row == ("acme", account, "thing/changed", {"X-Acme-Topic": "thing/changed"})


def test_the_project_declares_its_providers_and_the_receiver_names_none_of_them():
    webhooks = discover_webhooks(sync_pipelines.defs)
    providers = discover_providers(sync_pipelines.defs)
    assert set(webhooks) == {"ecomanager", "maystro", "shopify"} and set(providers) == {"ecomanager", "google_ads", "linkedin_ads", "maystro", "meta_ads", "shipstation",
                                                                "shopify", "tiktok_ads"}
    source = "\n".join(path.read_text().lower() for path in RECEIVER.rglob("*.py"))
    for name in {*webhooks, *providers}:
        assert name not in source, f"the receiver names provider {name!r}"


def test_two_declarations_of_one_provider_are_refused(acme_package):
    folder = Path(acme_package.__path__[0]) / "acme_again"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "webhooks.py").write_text(f"from {acme_package.__name__}.acme.webhooks import THINGS, WEBHOOKS as W\n"
                                        "import dataclasses\nWEBHOOKS = dataclasses.replace(W, routes=W.routes)\n")
    importlib.invalidate_caches()
    with pytest.raises(ValueError, match="two WebhookDeclarations for 'acme'"):
        discover_webhooks(acme_package)
