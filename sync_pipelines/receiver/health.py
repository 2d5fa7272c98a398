"""What `GET /health` checks beyond the app database: Dagster's storage and its daemon.

Read straight from Dagster's PostgreSQL (the `DAGSTER_PG_*` variables `dagster.yaml` uses) so the
receiver stays free of Dagster. The daemon writes a heartbeat per daemon type every few seconds;
a scheduler or sensor daemon silent for longer than `SYNC_DAEMON_MAX_SILENCE_SECONDS` (300) means
schedules and sensors — and so syncs and webhook runs — have stopped.
"""

from collections.abc import Mapping
from urllib.parse import quote

import psycopg

REQUIRED_DAEMONS = ("SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR")
_HEARTBEATS = (
    "SELECT daemon_type, extract(epoch FROM (now() AT TIME ZONE 'UTC') - timestamp)"
    " FROM daemon_heartbeats"
)


def dagster_storage_url(environ: Mapping[str, str]) -> str | None:
    """Dagster's storage as a URL; every part percent-encoded (`safe=""`: a '/' in a password too)."""
    host, db = environ.get("DAGSTER_PG_HOST"), environ.get("DAGSTER_PG_DB")
    if not host or not db:
        return None
    user = quote(environ.get("DAGSTER_PG_USERNAME", "postgres"), safe="")
    password = environ.get("DAGSTER_PG_PASSWORD")
    auth = f"{user}:{quote(password, safe='')}" if password else user
    return f"postgresql://{auth}@{host}:{environ.get('DAGSTER_PG_PORT', '5432')}/{quote(db, safe='')}"


async def check_dagster(environ: Mapping[str, str], timeout: float = 2.0) -> dict:
    """{"status": ok|error|not_configured, "daemons": {type: seconds since heartbeat}}."""
    url = dagster_storage_url(environ)
    if url is None:
        return {"status": "not_configured"}
    max_silence = float(environ.get("SYNC_DAEMON_MAX_SILENCE_SECONDS", "300"))
    try:
        async with await psycopg.AsyncConnection.connect(url, connect_timeout=int(max(1, timeout))) as aconn:
            rows = await (await aconn.execute(_HEARTBEATS)).fetchall()
    except psycopg.errors.UndefinedTable:
        return {"status": "error", "error": "no daemon has ever run against this storage"}
    except Exception as error:
        return {"status": "error", "error": type(error).__name__}
    ages = {daemon: round(float(age), 1) for daemon, age in rows}
    silent = [d for d in REQUIRED_DAEMONS if ages.get(d, float("inf")) > max_silence]
    result: dict = {"status": "error" if silent else "ok", "daemons": ages}
    if silent:
        result["silent_daemons"] = silent
    return result
