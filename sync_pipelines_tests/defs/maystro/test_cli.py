"""`sync-pipelines maystro statuses`: list the seeded codes, add one, change one."""

from __future__ import annotations

import json

from sync_pipelines.cli import main
from sync_pipelines.defs.maystro.tables import DEFAULT_STATUSES


def test_statuses_list_and_set(database_url, capsys, unique):
    code = 2000 + int(unique, 16) % 100000
    assert main(["maystro", "statuses", "list", "--json"]) == 0
    listed = {row["code"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed[41] == {"code": 41, "label": "LIVRÉ", "status": "DELIVERED"}
    assert listed[50]["status"] == "CANCELLED" and set(DEFAULT_STATUSES) <= set(listed)
    assert main(["maystro", "statuses", "set", str(code), "RETOURNÉ AU VENDEUR", "RETURNED"]) == 0
    assert main(["maystro", "statuses", "set", str(code), "RETOURNÉ", "RETURNED_TO_SELLER"]) == 0
    capsys.readouterr()
    assert main(["maystro", "statuses", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split() == [str(code), "RETOURNÉ", "RETURNED_TO_SELLER"] for line in lines)
    assert main(["maystro", "statuses", "set", str(code), " ", "X"]) == 2
