"""Local-time schedules: each account's wanted hours start on its own clock, exactly once."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sync_pipelines.core.local_time import TICK, describe_hours, local_hour_starting, zone

HOURS = range(8, 21)


def starts(zone_name: str, day: datetime) -> list[tuple[str, int]]:
    """(UTC tick, local hour) for every 15-minute tick of a UTC day at which a wanted hour starts."""
    found = []
    tick = day
    while tick < day + timedelta(days=1):
        hour = local_hour_starting(tick, ZoneInfo(zone_name), HOURS)
        if hour is not None:
            found.append((tick.strftime("%H:%M"), hour))
        tick += TICK
    return found


def test_algiers_stores_sync_hourly_from_08_to_20_local_which_is_07_to_19_utc():
    found = starts("Africa/Algiers", datetime(2026, 6, 1, tzinfo=UTC))
    assert [h for _, h in found] == list(range(8, 21))
    assert found[0] == ("07:00", 8) and found[-1] == ("19:00", 20)


def test_a_store_elsewhere_follows_its_own_day_including_half_hour_offsets():
    kolkata = starts("Asia/Kolkata", datetime(2026, 6, 1, tzinfo=UTC))  # UTC+5:30
    assert ("02:30", 8) in kolkata and len(kolkata) == 13
    montreal = starts("America/Toronto", datetime(2026, 6, 1, tzinfo=UTC))  # UTC-4 in summer
    assert ("12:00", 8) in montreal and ("00:00", 20) in montreal


def test_daylight_saving_moves_the_utc_ticks_not_the_local_hours():
    winter = starts("Europe/Paris", datetime(2026, 1, 15, tzinfo=UTC))
    summer = starts("Europe/Paris", datetime(2026, 7, 15, tzinfo=UTC))
    assert winter[0] == ("07:00", 8) and summer[0] == ("06:00", 8)


def test_an_unknown_or_missing_zone_falls_back_to_the_default():
    assert zone(None, "Africa/Algiers").key == "Africa/Algiers"
    assert zone("Mars/Olympus", "Africa/Algiers").key == "Africa/Algiers"
    assert zone("Asia/Tokyo", "Africa/Algiers").key == "Asia/Tokyo"


def test_describe_hours():
    assert describe_hours(range(8, 21)) == "hourly 08:00–20:00"
    assert describe_hours([0, 6, 12, 18]) == "00:00 06:00 12:00 18:00"
