"""DailyApiRequests: calls counted per org-clock day and endpoint, the limit, and a way to exhaust it."""

from __future__ import annotations

import datetime as dt

OTHER_INTEGRATIONS = "(other integrations)"  # API usage staged by exhaust_api_limit, not calls made here
BULK_BATCHES = "(bulk batches)"  # DailyBulkApiBatches: 10,000-record ingest batches, not API requests


class ApiUsage:
    """Mixin of `Org`: usage lives in the `_api_calls` table, keyed by the org clock's UTC day."""


    def _today(self) -> str:
        return dt.datetime.fromtimestamp(self.now_ms() / 1000, tz=dt.timezone.utc).date().isoformat()

    def count_call(self, endpoint: str) -> tuple[int, int]:
        """Count one API call; returns (used, max) after it."""
        day = self._today()
        with self.write() as conn:
            conn.execute("INSERT INTO _api_calls VALUES (?, ?, 1) ON CONFLICT (day, endpoint) "
                         "DO UPDATE SET count = count + 1", (day, endpoint))
        return self.api_usage()

    def api_usage(self) -> tuple[int, int]:
        """(DailyApiRequests used today, Max)."""
        with self.read() as conn:
            used = conn.execute("SELECT COALESCE(SUM(count), 0) FROM _api_calls WHERE day = ? AND endpoint != ?",
                                (self._today(), BULK_BATCHES)).fetchone()[0]
        return used, self.settings.daily_api_max

    def count_bulk_batches(self, batches: int) -> None:
        """Count Bulk ingest batches against today's DailyBulkApiBatches."""
        with self.write() as conn:
            conn.execute("INSERT INTO _api_calls VALUES (?, ?, ?) ON CONFLICT (day, endpoint) "
                         "DO UPDATE SET count = count + excluded.count", (self._today(), BULK_BATCHES, batches))

    def bulk_batches(self) -> int:
        """Bulk ingest batches used today."""
        with self.read() as conn:
            row = conn.execute("SELECT count FROM _api_calls WHERE day = ? AND endpoint = ?",
                               (self._today(), BULK_BATCHES)).fetchone()
        return row[0] if row else 0

    def api_calls(self) -> dict[str, int]:
        """Calls made to this emulator so far, per endpoint (all days)."""
        with self.read() as conn:
            rows = conn.execute("SELECT endpoint, SUM(count) FROM _api_calls WHERE endpoint NOT IN (?, ?) "
                                "GROUP BY endpoint", (OTHER_INTEGRATIONS, BULK_BATCHES)).fetchall()
        return {endpoint: count for endpoint, count in rows}

    def reset_api_calls(self) -> None:
        with self.write() as conn:
            conn.execute("DELETE FROM _api_calls")

    def exhaust_api_limit(self) -> None:
        """Use up the rest of today's DailyApiRequests, as other integrations of a busy org do; the next day of
        the org clock starts afresh."""
        day = self._today()
        with self.write() as conn:
            used = conn.execute("SELECT COALESCE(SUM(count), 0) FROM _api_calls WHERE day = ? AND endpoint != ?",
                                (day, BULK_BATCHES)).fetchone()[0]
            conn.execute("INSERT INTO _api_calls VALUES (?, ?, ?) ON CONFLICT (day, endpoint) "
                         "DO UPDATE SET count = count + excluded.count",
                         (day, OTHER_INTEGRATIONS, max(0, self.settings.daily_api_max - used)))

    def set_api_limit(self, maximum: int) -> None:
        self.update_settings(daily_api_max=maximum)
