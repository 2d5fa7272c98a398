"""`POST /triggers/<provider>_sync` bodies of batch providers: checked strictly, turned into run config."""

import pytest

from sync_pipelines.core.batch_requests import batch_trigger_parser

parse = batch_trigger_parser("acme_sync_accounts", str.lower, ("new", "full"), "new")


def config(accounts, mode):
    return {"ops": {"acme_sync_accounts": {"config": {"accounts": accounts, "mode": mode}}}}


def test_an_empty_body_syncs_every_account_in_the_default_mode():
    assert parse(None) == parse({}) == config([], "new")


def test_accounts_are_normalised_and_a_mode_is_kept():
    assert parse({"accounts": ["StoreA", "storeb"], "mode": "full"}) == config(["storea", "storeb"], "full")


@pytest.mark.parametrize(("body", "says"), [
    ([], "JSON object"), ({"stores": []}, "unknown fields"), ({"accounts": "a"}, "list of at most"),
    ({"accounts": [""]}, "list of at most"), ({"accounts": [1]}, "list of at most"),
    ({"accounts": ["a"] * 1001}, "list of at most"), ({"mode": "everything"}, "mode must be one of"),
])
def test_bad_bodies_are_refused_with_the_reason(body, says):
    with pytest.raises(ValueError, match=says):
        parse(body)


def test_a_normaliser_refusing_an_id_refuses_the_body():
    def strict(account: str) -> str:
        raise ValueError(f"not a store: {account!r}")

    with pytest.raises(ValueError, match="not a store"):
        batch_trigger_parser("x", strict, ("new",), "new")({"accounts": ["?"]})
