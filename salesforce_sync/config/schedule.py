"""Sync frequencies and the cron of whole, equal windows each one maps to."""

from __future__ import annotations

from typing import Literal

Frequency = int | Literal["manual"]

MANUAL = "manual"
MINUTES_PER_DAY = 1440
#: Minutes that cut every day into whole equal windows starting at midnight UTC, so each partition
#: window lines up with a cron tick: divisors of an hour, whole hours dividing a day, and a day.
ALLOWED_FREQUENCIES: tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440,
)


def window_minutes(frequency: Frequency) -> int:
    """Length of one partition window; manual integrations get daily windows to backfill on demand."""
    if frequency == MANUAL:
        return MINUTES_PER_DAY
    if frequency not in ALLOWED_FREQUENCIES:
        raise ValueError(frequency_problem(frequency))
    return int(frequency)


def partition_cron(frequency: Frequency) -> str:
    """The cron schedule whose ticks bound the integration's partition windows (UTC)."""
    minutes = window_minutes(frequency)
    if minutes == 1:
        return "* * * * *"
    if minutes < 60:
        return f"*/{minutes} * * * *"
    if minutes == 60:
        return "0 * * * *"
    if minutes < MINUTES_PER_DAY:
        return f"0 */{minutes // 60} * * *"
    return "0 0 * * *"


def frequency_problem(frequency: object) -> str:
    """Why `frequency` is not accepted, listing what is."""
    allowed = ", ".join(str(m) for m in ALLOWED_FREQUENCIES)
    return (
        f"{frequency!r} is not a usable frequency: give minutes that cut a day into whole windows "
        f"({allowed}) or 'manual'"
    )
