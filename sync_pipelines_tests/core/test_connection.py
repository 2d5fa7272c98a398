"""A database that cannot be opened is reported in one line naming user, host, port and database
(never the password) and what to check; a wrong URL is not retried, an outage is."""

from __future__ import annotations

import time

import dagster as dg
import pytest
import sqlalchemy as sa

from sync_pipelines.core.connection import DatabaseConnectionError, connect
from sync_pipelines.core.dg.assets import STEP_RETRY_POLICY, sync_asset
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.entities import entity_table
from sync_pipelines_tests.core.wrong_urls import WRONG_PASSWORD, wrong_urls

TABLE = entity_table(sa.MetaData(), "unreachable", "things", sa.Column("thing_id", sa.BigInteger, nullable=False),
                     key=["thing_id"])
PARTITIONS = dg.DynamicPartitionsDefinition(name="unreachable_accounts")


class Session:
    def things(self, since=None):
        yield [{"thing_id": 1}]


THINGS = sync_asset(provider="unreachable", name="things", stream_table=TABLE, fetch=Session.things,
                    client_key="client", partitions_def=PARTITIONS, description="things")


@pytest.fixture(scope="module")
def urls(postgres_server):
    return wrong_urls(postgres_server)


@pytest.mark.parametrize("fault, reason, retryable", [
    ("wrong password", "password authentication failed", False),
    ("unknown database", "no such database", False),
    ("closed port", "connection refused", True),
])
def test_each_fault_is_one_line_naming_the_target_and_what_to_check(urls, fault, reason, retryable):
    url = urls[fault]
    with pytest.raises(DatabaseConnectionError) as raised:
        connect(url, source="DATABASE_URL")
    message = str(raised.value)
    host_port_db = url.split("@", 1)[1]
    assert "\n" not in message and WRONG_PASSWORD not in message
    assert host_port_db in message and reason in message and "check" in message and "DATABASE_URL" in message
    assert raised.value.retryable is retryable


@pytest.mark.parametrize("url, reason", [
    (f"postgresql://u:{WRONG_PASSWORD}@no-such-host.invalid:5432/app", "unknown host name"),
    (f"postgresql://u:{WRONG_PASSWORD}@db.example:not-a-port/app", "unknown host name (or invalid port)"),
    (f"postgresql://u:{WRONG_PASSWORD}@db.example/app?sslmod=require", "not a valid PostgreSQL URL"),
    (f"host=db.example password={WRONG_PASSWORD} garbage", "not a valid PostgreSQL URL"),
])
def test_a_wrong_host_or_a_malformed_url_is_not_retryable(url, reason):
    started = time.monotonic()
    with pytest.raises(DatabaseConnectionError) as raised:
        connect(url, source="DATABASE_URL")
    assert time.monotonic() - started < 10
    assert reason in str(raised.value) and WRONG_PASSWORD not in str(raised.value)
    assert not raised.value.retryable


def _materialize(instance, url):
    instance.add_dynamic_partitions(PARTITIONS.name, ["acct"])
    started = time.monotonic()
    result = dg.materialize([THINGS], partition_key="acct", instance=instance, raise_on_error=False,
                            resources={"app_db": AppDatabase(url=url), "client": object()})
    return result, time.monotonic() - started


def _failure_message(result) -> str:
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return failure.step_failure_data.error.message.strip()


def test_a_run_with_a_wrong_password_fails_at_once_with_the_one_line(instance, urls):
    result, took = _materialize(instance, urls["wrong password"])
    assert not result.success
    assert [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY] == []
    message = _failure_message(result)
    assert "password authentication failed" in message and urls["wrong password"].split("@", 1)[1] in message
    assert "Exceeded max_retries" not in message and WRONG_PASSWORD not in message
    assert took < 30


def test_an_outage_is_retried_then_fails_with_the_one_line(instance, urls):
    result, _ = _materialize(instance, urls["closed port"])
    assert not result.success
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == STEP_RETRY_POLICY.max_retries
    message = _failure_message(result)
    assert "connection refused" in message and "Exceeded max_retries" not in message
    assert WRONG_PASSWORD not in message
