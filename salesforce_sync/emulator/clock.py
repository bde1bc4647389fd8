"""The org's clock: real time plus an offset tests set, move or freeze; ISO datetimes in and out.

Every write stamps LastModifiedDate and SystemModstamp from it, so tests can put the org ahead of or behind
the host, or hold it still while a sync runs.
"""

from __future__ import annotations

import datetime as dt
import re
import time

ISO_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2})?$"
)


def iso_to_ms(text: str) -> int | None:
    """Epoch ms of an ISO datetime in any form clients send (Z, +00:00, +0000, 0-6 fraction digits)."""
    m = ISO_DATETIME.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    stamp = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s),
                        int((frac or "0").ljust(6, "0")), tzinfo=dt.timezone.utc)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        stamp -= sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return int(stamp.timestamp() * 1000)


def ms_to_iso(ms: int, suffix: str = "+0000") -> str:
    """`2024-01-02T03:04:05.000+0000` (REST) or with suffix 'Z' (Bulk CSV)."""
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}" + suffix


class OrgClock:
    """Mixin of `Org`: the clock lives in the org's `_meta` table, so every process sharing a state file
    reads the same time."""


    def now_ms(self) -> int:
        with self._lock:
            frozen = self._meta("clock_frozen_ms")
            if frozen:
                return int(frozen)
            return int(time.time() * 1000) + int(self._meta("clock_offset_ms"))

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now_ms() / 1000, tz=dt.timezone.utc)

    def set_clock(self, at: dt.datetime, *, frozen: bool = False) -> None:
        """Make the org's clock read `at` now; frozen keeps it there until moved again."""
        target = int(at.timestamp() * 1000)
        with self.write():
            self._set_meta("clock_frozen_ms", str(target) if frozen else "")
            self._set_meta("clock_offset_ms", str(target - int(time.time() * 1000)))

    def skew_clock(self, delta: dt.timedelta) -> None:
        """Run the org's clock `delta` ahead of the host's (negative: behind), ticking, as a skewed org does."""
        with self.write():
            self._set_meta("clock_frozen_ms", "")
            self._set_meta("clock_offset_ms", str(int(delta.total_seconds() * 1000)))

    def move_clock(self, delta: dt.timedelta) -> None:
        with self.write():
            frozen = self._meta("clock_frozen_ms")
            step = int(delta.total_seconds() * 1000)
            if frozen:
                self._set_meta("clock_frozen_ms", str(int(frozen) + step))
            self._set_meta("clock_offset_ms", str(int(self._meta("clock_offset_ms")) + step))

    def unfreeze_clock(self) -> None:
        with self.write():
            frozen = self._meta("clock_frozen_ms")
            if frozen:
                self._set_meta("clock_offset_ms", str(int(frozen) - int(time.time() * 1000)))
            self._set_meta("clock_frozen_ms", "")
