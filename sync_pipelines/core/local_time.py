"""Schedules on each account's own clock ("every hour from 08:00 to 20:00 in the store's zone").

A Dagster schedule has one execution time zone, but accounts live in many. So a schedule ticks
every `TICK` (15 minutes) in UTC and asks, per account, whether one of its wanted local hours
began during the tick that just started. Every zone in use is offset from UTC by a multiple of
15 minutes, so each local hour start falls in exactly one tick; a DST jump repeats or skips a
local hour as the wall clock does. Pure: no Dagster.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

TICK = timedelta(minutes=15)
TICK_CRON = "*/15 * * * *"


def zone(name: str | None, default: str) -> ZoneInfo:
    """The account's zone, or `default` when it has none or an unknown one."""
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


def local_hour_starting(tick: datetime, zone_info: ZoneInfo, hours: Collection[int],
                        width: timedelta = TICK) -> int | None:
    """The local hour (one of `hours`) that began in [tick, tick + width) on `zone_info`'s clock, or None."""
    local = tick.astimezone(zone_info)
    start = local.replace(minute=0, second=0, microsecond=0)
    if local.hour in hours and local - start < width:
        return local.hour
    return None


def describe_hours(hours: Collection[int]) -> str:
    """`08:00–20:00` for a run of hours, else the hours listed."""
    ordered = sorted(hours)
    if ordered and ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"hourly {ordered[0]:02d}:00–{ordered[-1]:02d}:00"
    return " ".join(f"{h:02d}:00" for h in ordered)
