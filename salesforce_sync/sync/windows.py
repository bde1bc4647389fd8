"""Which span of the cursor field one partition window reads."""

from __future__ import annotations

from datetime import datetime, timedelta

from salesforce_sync.config.models import HistoryMode

HISTORICAL_MODES: frozenset[str] = frozenset({"historical_and_forward", "historical_only"})


def fetch_bounds(
    window_start: datetime,
    window_end: datetime,
    *,
    first_window: bool,
    history: HistoryMode,
    overlap: timedelta,
) -> tuple[datetime | None, datetime]:
    """(lower bound or None, upper bound) of the records a window fetches, half-open `[start, end)`.

    The first window of an integration that imports history has no lower bound, so it also picks up
    every record modified before `start`. Every other window re-reads `overlap` before its start:
    records stamped just before the previous window closed may only have become visible after it
    ran, and the upserts are idempotent, so reading them twice is harmless. A forward_only integration's
    first window starts exactly at `start`: it promises nothing older.
    """
    for name, moment in (("window_start", window_start), ("window_end", window_end)):
        if moment.tzinfo is None:
            raise ValueError(f"{name} {moment.isoformat()} has no time zone; windows are UTC-aware")
    if window_start >= window_end:
        raise ValueError(f"window start {window_start.isoformat()} is not before its end {window_end.isoformat()}")
    if overlap < timedelta(0):
        raise ValueError(f"overlap must not be negative, got {overlap}")
    if first_window and history in HISTORICAL_MODES:
        return None, window_end
    if first_window:  # forward_only: nothing modified before `start`, not even within the overlap
        return window_start, window_end
    return window_start - overlap, window_end
