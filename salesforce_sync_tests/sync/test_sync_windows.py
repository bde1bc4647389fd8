"""Fetch bounds of a partition window: history on the first window, overlap on the others."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from salesforce_sync.sync import fetch_bounds

START = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
END = datetime(2026, 11, 20, 11, tzinfo=timezone.utc)
OVERLAP = timedelta(minutes=10)


@pytest.mark.parametrize(("first_window", "history", "expected_start"), [
    (True, "historical_and_forward", None),
    (True, "historical_only", None),
    (True, "forward_only", START),  # it promises nothing modified before start
    (False, "historical_and_forward", START - OVERLAP),
    (False, "historical_only", START - OVERLAP),
    (False, "forward_only", START - OVERLAP),
])
def test_fetch_bounds(first_window: bool, history: str, expected_start: datetime | None) -> None:
    assert fetch_bounds(START, END, first_window=first_window, history=history, overlap=OVERLAP) == (
        expected_start, END)


def test_zero_overlap_reads_exactly_the_window() -> None:
    assert fetch_bounds(START, END, first_window=False, history="forward_only", overlap=timedelta(0)) == (START, END)


@pytest.mark.parametrize(("start", "end", "overlap", "problem"), [
    (START.replace(tzinfo=None), END, OVERLAP, "window_start .* has no time zone"),
    (END, START, OVERLAP, "is not before its end"),
    (START, END, -OVERLAP, "overlap must not be negative"),
])
def test_bad_windows_are_refused(start: datetime, end: datetime, overlap: timedelta, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        fetch_bounds(start, end, first_window=False, history="historical_and_forward", overlap=overlap)
