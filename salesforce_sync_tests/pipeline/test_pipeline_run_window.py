"""The window a run syncs, decided once per run: first/full from the run's own "present", a manual sync's
reach to the present and its resumption, and an org clock behind the host's bounding the read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.runs.window import MANUAL_LAG, SyncWindow, window_for_run

START = datetime(2026, 11, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def integration(**settings: object) -> IntegrationConfig:
    return IntegrationConfig(id="crm", project="acme", start=START, **settings)


def test_full_is_judged_by_the_run_s_present_not_the_step_s() -> None:
    hourly = integration()
    # The run was created at 05:00:30 (last complete window ends 05:00); a step starting after 06:00 gets
    # the same answer, because both are given the run's creation.
    run = dict(first_start=START, last_complete_end=START + 5 * HOUR,
               org_as_of=START + 5 * HOUR + timedelta(seconds=30), watermark=None)
    assert window_for_run(hourly, START, START + 5 * HOUR, **run) == SyncWindow(START, START + 5 * HOUR, first=True,
                                                                                full=True)
    assert not window_for_run(hourly, START + HOUR, START + 5 * HOUR, **run).full  # not from the first window
    assert not window_for_run(hourly, START, START + 4 * HOUR, **run).full  # not up to the last complete one


def test_a_manual_sync_reads_to_the_present_less_the_lag_and_resumes_from_its_watermark() -> None:
    manual = integration(frequency="manual")
    now = START + 3 * DAY + 10 * HOUR
    last_day = (START + 2 * DAY, START + 3 * DAY)
    first = window_for_run(manual, START, last_day[1], first_start=START, last_complete_end=last_day[1],
                           org_as_of=now, watermark=None)
    assert (first.full, first.read_from, first.watermark) == (True, None, now - MANUAL_LAG)

    mark = now - MANUAL_LAG
    later = now + HOUR
    again = window_for_run(manual, *last_day, first_start=START, last_complete_end=last_day[1], org_as_of=later,
                           watermark=mark)
    assert (again.first, again.full, again.read_from, again.watermark) == (False, False, mark, later - MANUAL_LAG)

    backfill = window_for_run(manual, START + DAY, START + 2 * DAY, first_start=START, last_complete_end=last_day[1],
                              org_as_of=later, watermark=mark)
    assert backfill == SyncWindow(START + DAY, START + 2 * DAY)  # an old day alone: exactly that day


def test_an_org_clock_behind_bounds_the_read_and_the_watermark() -> None:
    hourly = integration()
    end = START + 5 * HOUR
    behind = window_for_run(hourly, START + 4 * HOUR, end, first_start=START, last_complete_end=end,
                            org_as_of=end - timedelta(minutes=20), watermark=None)
    assert (behind.read_until, behind.watermark) == (end - timedelta(minutes=20), end - timedelta(minutes=20))
    within_a_second = window_for_run(hourly, START + 4 * HOUR, end, first_start=START, last_complete_end=end,
                                     org_as_of=end - timedelta(milliseconds=400), watermark=None)
    assert within_a_second.watermark == end  # the Date header's resolution: noise, not skew
    with pytest.raises(ValueError, match="its clock is far behind this host's"):
        window_for_run(hourly, START + 4 * HOUR, end, first_start=START, last_complete_end=end,
                       org_as_of=START + 3 * HOUR, watermark=None)
