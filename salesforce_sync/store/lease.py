"""The sync lease: one row per integration in the audience store saying who syncs it now, so two syncs of
one integration never overlap, whoever launched them and on whichever machine.

Every change happens in one write transaction: BEGIN IMMEDIATE on SQLite (the store's write
transactions), a row lock (`SELECT ... FOR UPDATE`) plus a conflict-safe insert on PostgreSQL. A holder
renews `expires_at` while it works; a lease past `expires_at`, or whose holder the caller reports gone
(every process of it dead, on the same host), may be taken over. One owner may hold a lease several times
at once (the steps of one Dagster run, in one process or several): `pids` lists a process per hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from salesforce_sync.store.schema import sync_leases


@dataclass(frozen=True)
class LeaseHolder:
    """Who asks for a lease: `owner` is the key re-entry is granted by (every step of one Dagster run, or
    a CLI command and the run it starts, share one), `label` names it for people."""

    owner: str
    label: str
    host: str
    pid: int


@dataclass(frozen=True)
class LeaseRecord:
    """A lease as stored."""

    integration_id: str
    owner: str
    holder: str
    host: str
    pids: tuple[int, ...]
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime


class SyncLeases:
    """All SQL of the sync lease (SQLite and PostgreSQL)."""

    def __init__(self, engine: Engine, reading: Callable[[], Connection], *, is_sqlite: bool) -> None:
        self._engine = engine
        self._reading = reading  # a connection that never waits for writers (deferred on SQLite)
        self._is_sqlite = is_sqlite

    def try_acquire(self, integration_id: str, holder: LeaseHolder, ttl: timedelta,
                    holder_gone: Callable[[LeaseRecord], bool]) -> LeaseRecord | None:
        """Take the lease (or enter it again as the same owner); None when held now, else the other holder.

        A lease that expired, or whose holder `holder_gone` reports dead, is taken over.
        """
        now = datetime.now(UTC)
        fresh = {"owner": holder.owner, "holder": holder.label, "host": holder.host, "pids": str(holder.pid),
                 "acquired_at": now, "heartbeat_at": now, "expires_at": now + ttl}
        leases = sync_leases.c
        with self._engine.begin() as connection:
            current = _current(connection, integration_id, lock=True)
            if current is None:
                inserted = connection.execute(
                    self._insert().values(integration_id=integration_id, **fresh).on_conflict_do_nothing())
                return None if inserted.rowcount == 1 else _current(connection, integration_id, lock=False)
            if current.owner == holder.owner:
                connection.execute(
                    update(sync_leases).where(leases.integration_id == integration_id)
                    .values(pids=_pids_text((*current.pids, holder.pid)), heartbeat_at=now, expires_at=now + ttl))
                return None
            if current.expires_at <= now or holder_gone(current):
                taken = connection.execute(
                    update(sync_leases)
                    .where(leases.integration_id == integration_id, leases.owner == current.owner)
                    .values(**fresh))
                return None if taken.rowcount == 1 else _current(connection, integration_id, lock=False)
            return current

    def renew(self, integration_id: str, owner: str, ttl: timedelta) -> bool:
        """Push the owner's lease expiry forward; False when the owner no longer holds it."""
        now = datetime.now(UTC)
        leases = sync_leases.c
        statement = (update(sync_leases).where(leases.integration_id == integration_id, leases.owner == owner)
                     .values(heartbeat_at=now, expires_at=now + ttl))
        with self._engine.begin() as connection:
            return connection.execute(statement).rowcount == 1

    def release(self, integration_id: str, holder: LeaseHolder) -> None:
        """One hold of the holder's process ends; the lease is free once its owner's last hold ends. A lease
        someone else took over in the meantime is left alone."""
        leases = sync_leases.c
        mine = (leases.integration_id == integration_id, leases.owner == holder.owner)
        with self._engine.begin() as connection:
            current = _current(connection, integration_id, lock=True)
            if current is None or current.owner != holder.owner:
                return
            pids = list(current.pids)
            if holder.pid in pids:
                pids.remove(holder.pid)
            if pids:
                connection.execute(update(sync_leases).where(*mine).values(pids=_pids_text(pids)))
            else:
                connection.execute(delete(sync_leases).where(*mine))

    def current(self, integration_id: str) -> LeaseRecord | None:
        """The lease of an integration as stored, if any (expired ones included)."""
        with self._reading() as connection:
            return _current(connection, integration_id, lock=False)

    def _insert(self) -> postgresql.Insert | sqlite.Insert:
        return sqlite.insert(sync_leases) if self._is_sqlite else postgresql.insert(sync_leases)


def _current(connection: Connection, integration_id: str, *, lock: bool) -> LeaseRecord | None:
    query = select(sync_leases).where(sync_leases.c.integration_id == integration_id)
    row = connection.execute(query.with_for_update() if lock else query).one_or_none()
    return None if row is None else _record(row)


def _pids_text(pids: Iterable[int]) -> str:
    return " ".join(str(pid) for pid in pids)


def _record(row: Row[Any]) -> LeaseRecord:
    return LeaseRecord(integration_id=row.integration_id, owner=row.owner, holder=row.holder, host=row.host,
                       pids=tuple(int(pid) for pid in row.pids.split()), acquired_at=row.acquired_at,
                       heartbeat_at=row.heartbeat_at, expires_at=row.expires_at)
