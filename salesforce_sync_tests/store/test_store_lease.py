"""The sync lease in the audience store, on SQLite and PostgreSQL: one holder at a time, re-entry by the
same owner, release, takeover of an expired lease or of one whose processes are dead, and a waiting
second sync that gives up with one line naming the holder."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from salesforce_sync.store import AudienceStore
from salesforce_sync.store.lease import LeaseHolder
from salesforce_sync.runs.lease import (
    SyncLeaseBusy,
    SyncLeaseLost,
    acquire_lease,
    cli_holder,
    dagster_holder,
    holder_gone,
)

TTL = timedelta(seconds=60)
NO_WAIT = timedelta(0)


@pytest.fixture
def store(store_url: str) -> Iterator[AudienceStore]:
    with AudienceStore(store_url) as store:
        yield store


def never_gone(_record: object) -> bool:
    return False


def other_host(owner: str, pid: int = 4242) -> LeaseHolder:
    return LeaseHolder(owner=owner, label=f"CLI pid {pid} on host elsewhere", host="elsewhere", pid=pid)


def test_one_owner_at_a_time_and_free_after_its_last_hold(store: AudienceStore) -> None:
    run = dagster_holder("run-1")
    assert store.leases.try_acquire("crm", run, TTL, never_gone) is None
    assert store.leases.try_acquire("crm", run, TTL, never_gone) is None  # a second step of the same run
    held = store.leases.current("crm")
    assert (held.owner, held.holder, held.pids) == ("dagster:run-1", "Dagster run run-1", (run.pid, run.pid))

    cli = cli_holder()
    other = store.leases.try_acquire("crm", cli, TTL, never_gone)
    assert other is not None and other.holder == "Dagster run run-1"
    assert store.leases.try_acquire("other_integration", cli, TTL, never_gone) is None  # leases are per integration

    store.leases.release("crm", run)
    assert store.leases.try_acquire("crm", cli, TTL, never_gone) is not None  # one hold of the run remains
    store.leases.release("crm", run)
    assert store.leases.current("crm") is None
    assert store.leases.try_acquire("crm", cli, TTL, never_gone) is None


def test_an_expired_lease_is_taken_over_and_its_old_holder_notices(store: AudienceStore) -> None:
    crashed = other_host("cli:elsewhere:1")
    assert store.leases.try_acquire("crm", crashed, timedelta(seconds=1), never_gone) is None
    assert store.leases.try_acquire("crm", cli_holder(), TTL, never_gone) is not None
    time.sleep(1.1)

    lease = acquire_lease(store, "crm", cli_holder(), wait=NO_WAIT)
    try:
        assert store.leases.current("crm").holder == lease.holder.label
        assert not store.leases.renew("crm", crashed.owner, TTL)  # the old holder cannot extend it any more
        lease.confirm()
    finally:
        lease.release()
    store.leases.release("crm", crashed)  # a late release by the old holder leaves others alone
    assert store.leases.current("crm") is None


def test_a_lease_whose_processes_all_died_on_this_host_is_taken_over_at_once(store: AudienceStore) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = cli_holder()
    gone = LeaseHolder(owner="cli:dead", label=f"CLI pid {dead.pid} on host {live.host}", host=live.host, pid=dead.pid)
    assert store.leases.try_acquire("crm", gone, TTL, never_gone) is None
    # Another step of the dead owner still alive on this host keeps it held.
    alive_step = LeaseHolder(owner="cli:dead", label=gone.label, host=live.host, pid=live.pid)
    assert store.leases.try_acquire("crm", alive_step, TTL, never_gone) is None
    assert holder_gone(store.leases.current("crm")) is False
    store.leases.release("crm", alive_step)
    assert holder_gone(store.leases.current("crm")) is True

    with acquire_lease(store, "crm", live, wait=NO_WAIT):
        assert store.leases.current("crm").owner == live.owner
    # A dead process on another host proves nothing: only expiry frees that one.
    assert store.leases.try_acquire("crm", other_host("cli:far", dead.pid), TTL, never_gone) is None
    assert holder_gone(store.leases.current("crm")) is False


def test_a_second_sync_waits_for_the_holder_then_gives_up_naming_it(store: AudienceStore) -> None:
    first = acquire_lease(store, "crm", cli_holder(), wait=NO_WAIT)
    started = time.monotonic()
    with pytest.raises(SyncLeaseBusy) as busy:
        acquire_lease(store, "crm", dagster_holder("run-2"), wait=timedelta(seconds=1))
    assert time.monotonic() - started >= 1
    message = str(busy.value)
    assert "\n" not in message and first.holder.label in message and "'crm'" in message
    assert "waiting 1 s" in message

    releaser = threading.Timer(0.5, first.release)
    releaser.start()
    with acquire_lease(store, "crm", dagster_holder("run-2"), wait=timedelta(seconds=30)) as second:
        assert store.leases.current("crm").holder == second.holder.label
    releaser.join()


def test_a_holder_renews_its_lease_in_the_background(store: AudienceStore) -> None:
    short = timedelta(seconds=1.2)
    with acquire_lease(store, "crm", cli_holder(), wait=NO_WAIT, ttl=short) as lease:
        time.sleep(2)  # longer than the ttl: only the renewals keep it
        assert store.leases.try_acquire("crm", dagster_holder("run-3"), TTL, never_gone) is not None
        lease.confirm()
    assert store.leases.current("crm") is None


def test_a_holder_that_lost_its_lease_refuses_to_go_on(store: AudienceStore) -> None:
    lease = acquire_lease(store, "crm", cli_holder(), wait=NO_WAIT)
    try:
        store.leases.release("crm", lease.holder)  # as if it had expired and been taken over
        assert store.leases.try_acquire("crm", dagster_holder("run-4"), TTL, never_gone) is None
        with pytest.raises(SyncLeaseLost, match="Dagster run run-4 holds it now"):
            lease.confirm()
    finally:
        lease.release()
    assert store.leases.current("crm").owner == "dagster:run-4"
