"""`POST /triggers/<provider>_sync` for batch providers: the JSON body, checked strictly, becomes
the batch run's config. Pure: the receiver validates with it (400 with the message) before storing
the trigger, and the trigger sensor builds the run from it.

    {}                                   every active, sync-enabled account, the default mode
    {"accounts": ["store-a"], "mode": "full"}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

MAX_ACCOUNTS = 1000


def batch_trigger_parser(op_name: str, normalise: Callable[[str], str], modes: Sequence[str],
                         default_mode: str) -> Callable[[object], dict]:
    def parse(body: object) -> dict:
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        unknown = sorted(set(body) - {"accounts", "mode"})
        if unknown:
            raise ValueError(f"unknown fields {unknown}; allowed: accounts, mode")
        accounts = body.get("accounts", [])
        if not isinstance(accounts, list) or len(accounts) > MAX_ACCOUNTS or not all(
                isinstance(a, str) and a.strip() for a in accounts):
            raise ValueError(f"accounts must be a list of at most {MAX_ACCOUNTS} account ids")
        mode = body.get("mode", default_mode)
        if mode not in modes:
            raise ValueError(f"mode must be one of {', '.join(modes)}")
        try:
            ids = [normalise(a) for a in accounts]
        except ValueError as error:
            raise ValueError(str(error)) from None
        return {"ops": {op_name: {"config": {"accounts": ids, "mode": mode}}}}

    return parse
