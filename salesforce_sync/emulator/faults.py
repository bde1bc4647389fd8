"""Injected faults: errors, cut connections and latency for the next N requests whose path matches."""

from __future__ import annotations

import re
from typing import Any


class FaultStore:
    """Mixin of `Org`: faults live in the `_faults` table, so a test can arm one in the server another
    process talks to."""


    def add_fault(self, kind: str, path_pattern: str, *, count: int = 1, method: str | None = None,
                  status: int | None = None, error_code: str | None = None, message: str | None = None,
                  latency_ms: int | None = None) -> int:
        """Inject a fault for the next `count` requests whose path matches the regex (count -1 = forever).
        Kinds: `error` (status + errorCode), `cut` (drop the connection mid-response), `latency`."""
        if kind not in ("error", "cut", "latency"):
            raise ValueError(f"unknown fault kind {kind!r}: use error, cut or latency")
        re.compile(path_pattern)
        with self.write() as conn:
            return conn.execute(
                "INSERT INTO _faults (kind, path_pattern, method, status, error_code, message, remaining, latency_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, path_pattern, method, status, error_code, message, count, latency_ms)).lastrowid

    def take_faults(self, method: str, path: str) -> list[dict[str, Any]]:
        """The faults that apply to this request, each used once."""
        with self.read() as conn:
            if conn.execute("SELECT 1 FROM _faults WHERE remaining != 0 LIMIT 1").fetchone() is None:
                return []
        hits = []
        with self.write() as conn:
            rows = conn.execute("SELECT id, kind, path_pattern, method, status, error_code, message, latency_ms "
                                "FROM _faults WHERE remaining != 0 ORDER BY id").fetchall()
            for fid, kind, pattern, fmethod, status, code, message, latency in rows:
                if (fmethod and fmethod.upper() != method) or not re.search(pattern, path):
                    continue
                conn.execute("UPDATE _faults SET remaining = remaining - 1 WHERE id = ? AND remaining > 0", (fid,))
                hits.append({"kind": kind, "status": status, "error_code": code, "message": message,
                             "latency_ms": latency})
        return hits

    def clear_faults(self) -> None:
        with self.write() as conn:
            conn.execute("DELETE FROM _faults")
