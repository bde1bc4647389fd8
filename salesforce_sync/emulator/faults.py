"""Injected faults: errors, cut connections and latency for the next N requests whose path matches (optionally
after letting the first few through); rows locked for the next N writes to an object; the next Bulk job of an
object ending Failed."""

from __future__ import annotations

import re
from typing import Any

REQUEST_FAULTS = ("error", "cut", "latency")  # act on an HTTP request whose path matches
ROW_LOCK = "row_lock"  # the next N record writes to an object fail with UNABLE_TO_LOCK_ROW
JOB_FAILURE = "job_failure"  # the next N Bulk jobs of an object end Failed


class FaultStore:
    """Mixin of `Org`: faults live in the `_faults` table, so a test can arm one in the server another
    process talks to."""


    def add_fault(self, kind: str, path_pattern: str, *, count: int = 1, method: str | None = None,
                  status: int | None = None, error_code: str | None = None, message: str | None = None,
                  latency_ms: int | None = None, after: int = 0) -> int:
        """Inject a fault for the next `count` requests whose path matches the regex (count -1 = forever),
        once `after` matching requests have gone through untouched (cut page 3 of a result: after=2).
        Kinds: `error` (status + errorCode), `cut` (drop the connection mid-response), `latency`."""
        if kind not in REQUEST_FAULTS:
            raise ValueError(f"unknown fault kind {kind!r}: use error, cut or latency")
        re.compile(path_pattern)
        return self._arm(kind, path_pattern, count=count, method=method, status=status, error_code=error_code,
                         message=message, latency_ms=latency_ms, after=after)

    def lock_rows(self, object_name: str, count: int = 1) -> int:
        """The next `count` record writes to `object_name` fail with UNABLE_TO_LOCK_ROW, as when another
        transaction holds the rows (or a parent's roll-up)."""
        return self._arm(ROW_LOCK, self.object(object_name).name, count=count)

    def fail_bulk_jobs(self, object_name: str, message: str, *, count: int = 1, job_type: str | None = None) -> int:
        """The next `count` Bulk 2.0 jobs on `object_name` (job_type V2Ingest or V2Query, else either) end
        Failed with `message` as their errorMessage."""
        if job_type not in (None, "V2Ingest", "V2Query"):
            raise ValueError(f"unknown job type {job_type!r}: use V2Ingest or V2Query")
        return self._arm(JOB_FAILURE, self.object(object_name).name, count=count, method=job_type, message=message)

    def _arm(self, kind: str, pattern: str, *, count: int, method: str | None = None, status: int | None = None,
             error_code: str | None = None, message: str | None = None, latency_ms: int | None = None,
             after: int = 0) -> int:
        with self.write() as conn:
            return conn.execute(
                "INSERT INTO _faults (kind, path_pattern, method, status, error_code, message, remaining, latency_ms, "
                "after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, pattern, method, status, error_code, message, count, latency_ms, max(0, after))).lastrowid

    def take_faults(self, method: str, path: str) -> list[dict[str, Any]]:
        """The request faults that apply to this request, each used once (or let through while `after` lasts)."""
        kinds = ", ".join(f"'{k}'" for k in REQUEST_FAULTS)
        with self.read() as conn:
            if conn.execute(f"SELECT 1 FROM _faults WHERE remaining != 0 AND kind IN ({kinds}) LIMIT 1").fetchone() is None:
                return []
        hits = []
        with self.write() as conn:
            rows = conn.execute("SELECT id, kind, path_pattern, method, status, error_code, message, latency_ms, after "
                                f"FROM _faults WHERE remaining != 0 AND kind IN ({kinds}) ORDER BY id").fetchall()
            for fid, kind, pattern, fmethod, status, code, message, latency, after in rows:
                if (fmethod and fmethod.upper() != method) or not re.search(pattern, path):
                    continue
                if after > 0:
                    conn.execute("UPDATE _faults SET after = after - 1 WHERE id = ?", (fid,))
                    continue
                conn.execute("UPDATE _faults SET remaining = remaining - 1 WHERE id = ? AND remaining > 0", (fid,))
                hits.append({"kind": kind, "status": status, "error_code": code, "message": message,
                             "latency_ms": latency})
        return hits

    def take_row_locks(self, object_name: str, writes: int) -> int:
        """How many of the next `writes` record writes to the object find their rows locked (used up here)."""
        return self._take_counted(ROW_LOCK, object_name, None, writes)[0]

    def take_job_failure(self, object_name: str, job_type: str) -> str | None:
        """The errorMessage of an armed Bulk job failure for this object and job type, used up; else None."""
        taken, message = self._take_counted(JOB_FAILURE, object_name, job_type, 1)
        return message if taken else None

    def _take_counted(self, kind: str, object_name: str, job_type: str | None, wanted: int) -> tuple[int, str | None]:
        with self.read() as conn:
            if conn.execute("SELECT 1 FROM _faults WHERE kind = ? AND remaining != 0 LIMIT 1", (kind,)).fetchone() is None:
                return 0, None
        taken, message = 0, None
        with self.write() as conn:
            rows = conn.execute("SELECT id, remaining, method, message FROM _faults WHERE kind = ? AND remaining != 0 "
                                "AND path_pattern = ? COLLATE NOCASE ORDER BY id", (kind, object_name)).fetchall()
            for fid, remaining, fjob_type, fmessage in rows:
                if taken >= wanted:
                    break
                if job_type and fjob_type and fjob_type != job_type:
                    continue
                used = wanted - taken if remaining < 0 else min(remaining, wanted - taken)
                conn.execute("UPDATE _faults SET remaining = remaining - ? WHERE id = ? AND remaining > 0", (used, fid))
                taken, message = taken + used, message or fmessage
        return taken, message

    def clear_faults(self) -> None:
        with self.write() as conn:
            conn.execute("DELETE FROM _faults")
