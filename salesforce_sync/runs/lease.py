"""Holding an integration's sync lease, in plain Python: one sync of an integration at a time, whether a
sensor, the UI, a backfill, the CLI or another machine launched it.

The lease lives in the audience store (see `store.lease`). A holder renews it from a background thread
while it fetches and writes, so only a crashed holder's lease expires; a dead holder process on this
host is recognised at once. A second sync waits up to the integration's `lease_wait_seconds`, then fails
with one line naming the holder.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import TracebackType

from salesforce_sync.store import AudienceStore
from salesforce_sync.store.lease import LeaseHolder, LeaseRecord

log = logging.getLogger(__name__)

LEASE_TTL = timedelta(seconds=60)
"""How long a lease outlives its holder's last renewal (a crashed holder on another host)."""
POLL_SECONDS = 0.5


class SyncLeaseBusy(Exception):
    """Another sync of the integration held the lease for longer than this one was willing to wait."""


class SyncLeaseLost(Exception):
    """The lease expired and someone else took it over: this sync must not write its watermark."""


def cli_holder() -> LeaseHolder:
    """This CLI process; the Dagster run it starts re-enters its lease by the same owner key."""
    host, pid = socket.gethostname(), os.getpid()
    return LeaseHolder(owner=f"cli:{host}:{pid}:{uuid.uuid4().hex[:12]}", label=f"CLI pid {pid} on host {host}",
                       host=host, pid=pid)


def dagster_holder(run_id: str, owner: str | None = None, label: str | None = None) -> LeaseHolder:
    """A step of Dagster run `run_id`; every step of the run shares its owner key (or the launcher's)."""
    return LeaseHolder(owner=owner or f"dagster:{run_id}", label=label or f"Dagster run {run_id}",
                       host=socket.gethostname(), pid=os.getpid())


def holder_gone(record: LeaseRecord) -> bool:
    """A lease held by processes of this host none of which exists any more (killed, crashed)."""
    return record.host == socket.gethostname() and not any(map(_process_exists, record.pids))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class SyncLease:
    """A held lease: renewed in the background until released (also on `with` exit)."""

    def __init__(self, store_url: str, integration_id: str, holder: LeaseHolder, ttl: timedelta) -> None:
        self.integration_id = integration_id
        self.holder = holder
        self.ttl = ttl
        self._store = AudienceStore(store_url)
        self._stop = threading.Event()
        self._lost = False
        self._thread = threading.Thread(target=self._renew_until_released, daemon=True,
                                        name=f"sync-lease-{integration_id}")
        self._thread.start()

    def _renew_until_released(self) -> None:
        while not self._stop.wait(self.ttl.total_seconds() / 4):
            try:
                if not self._store.leases.renew(self.integration_id, self.holder.owner, self.ttl):
                    self._lost = True
                    return
            except Exception as err:  # a store hiccup: the next renewal may succeed before expiry
                log.warning("integration %r: could not renew the sync lease: %s", self.integration_id, err)

    def confirm(self) -> None:
        """Raise SyncLeaseLost unless this holder still holds the lease (checked in the store)."""
        if self._lost or not self._store.leases.renew(self.integration_id, self.holder.owner, self.ttl):
            self._lost = True
            current = self._store.leases.current(self.integration_id)
            by = f"; {current.holder} holds it now" if current else ""
            raise SyncLeaseLost(f"integration {self.integration_id!r}: {self.holder.label} lost its sync lease "
                                f"(it expired){by}; nothing more is written by this sync")

    def release(self) -> None:
        """End this hold (idempotent); the lease is free when its owner's last hold ends."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        try:
            self._store.leases.release(self.integration_id, self.holder)
        finally:
            self._store.close()

    def __enter__(self) -> SyncLease:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()


def acquire_lease(store: AudienceStore, integration_id: str, holder: LeaseHolder, *, wait: timedelta,
                  ttl: timedelta = LEASE_TTL) -> SyncLease:
    """Take the integration's lease, waiting up to `wait` for another holder to finish."""
    leases = store.leases
    deadline = time.monotonic() + wait.total_seconds()
    while True:
        other = leases.try_acquire(integration_id, holder, ttl, holder_gone)
        if other is None:
            return SyncLease(store.url.render_as_string(hide_password=False), integration_id, holder, ttl)
        if time.monotonic() >= deadline:
            raise SyncLeaseBusy(busy_message(integration_id, other, wait))
        time.sleep(POLL_SECONDS)


def busy_message(integration_id: str, other: LeaseRecord, wait: timedelta) -> str:
    since = other.acquired_at.astimezone(UTC).isoformat(timespec="seconds")
    renewed = (datetime.now(UTC) - other.heartbeat_at).total_seconds()
    return (f"integration {integration_id!r} is already being synced by {other.holder} (since {since}, lease "
            f"renewed {renewed:.0f} s ago); gave up after waiting {wait.total_seconds():.0f} s")
