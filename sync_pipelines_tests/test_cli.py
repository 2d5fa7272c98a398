"""The documented way to add and deactivate an account, without hand-written SQL."""

from sync_pipelines.cli import main
from sync_pipelines.core.resources import AppDatabase
from sync_pipelines.core.registry import get_account


def test_accounts_add_list_deactivate(database_url, unique, capsys):
    account = f"cli-{unique}"
    assert main(["accounts", "add", "shipstation", account, "--credentials-env", "MY_KEY",
                 "--name", "CLI store", "--cadence", "hourly", "--lookback-days", "3"]) == 0
    with AppDatabase().connect() as conn:
        found = get_account(conn, "shipstation", account)
    assert (found.display_name, found.cadence, found.lookback_days, found.active) == ("CLI store", "hourly", 3, True)
    assert found.credentials_env == "MY_KEY"

    assert main(["accounts", "list", "shipstation"]) == 0
    assert account in capsys.readouterr().out

    assert main(["accounts", "deactivate", "shipstation", account]) == 0
    with AppDatabase().connect() as conn:
        assert not get_account(conn, "shipstation", account).active
    assert main(["accounts", "deactivate", "shipstation", f"missing-{unique}"]) == 1


def test_shopify_accounts_are_stored_lowercase_as_the_receiver_sees_them(database_url, unique, capsys):
    """The receiver lowercases shop domains; a mixed-case registration would get 403 for ever."""
    typed = f"Cli-{unique}.MyShopify.com"
    assert main(["accounts", "add", "shopify", typed, "--credentials-env", "SHOPIFY_TOKEN_CLI"]) == 0
    assert typed.lower() in capsys.readouterr().out
    with AppDatabase().connect() as conn:
        assert get_account(conn, "shopify", typed) is None
        assert get_account(conn, "shopify", typed.lower()).display_name == typed
    assert main(["accounts", "deactivate", "shopify", typed]) == 0
    with AppDatabase().connect() as conn:
        assert not get_account(conn, "shopify", typed.lower()).active
    # Other providers' ids may be case-sensitive: kept as typed.
    assert main(["accounts", "add", "shipstation", f"Store-{unique}", "--credentials-env", "K"]) == 0
    with AppDatabase().connect() as conn:
        assert get_account(conn, "shipstation", f"Store-{unique}") is not None
