"""A sync process killed with SIGKILL in the middle of a window, then rerun: no duplicate, nothing lost,
and the killed run never moved the watermark."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from salesforce_sync.commands.sync import run_sync
from salesforce_sync.config.loader import load_config
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore, SyncEvent
from salesforce_sync_tests.pipeline.support import (
    HOUR,
    assert_same_rows,
    cli_setup,
    hour_floor,
    oracle_rows,
    stored_rows,
)

LEADS = 2000
CHUNK = 500
KILL_DEADLINE_SECONDS = 120


def stored_leads(store: AudienceStore) -> int:
    counts = store.user_counts("acme")
    return int(counts["users"].sum()) if len(counts) else 0


@pytest.mark.slow
def test_a_sync_killed_mid_window_and_rerun_leaves_no_duplicate_and_loses_nothing(
        emulated_org_factory: Callable[..., EmulatedOrg], store_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    org = emulated_org_factory(seed=3, counts={"Lead": LEADS, "Contact": 0, "CampaignMember": 0})
    start = hour_floor(datetime.now(UTC)) - HOUR
    config_file, environment = cli_setup(org, store_url, tmp_path, start, chunk_size=CHUNK)
    environment["SALESFORCE_SYNC_HOME"] = str(tmp_path / "home")
    org.control.add_latency("/query", 200)  # every page of CHUNK records takes a while: room to strike

    with AudienceStore(store_url) as store:
        sync = subprocess.Popen([sys.executable, "-m", "salesforce_sync.cli", "sync", "crm"], env=environment,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + KILL_DEADLINE_SECONDS
            while not 0 < stored_leads(store) < LEADS:
                assert sync.poll() is None, "the sync ended before it could be killed mid-window"
                assert time.monotonic() < deadline, "the sync stored nothing in time"
                time.sleep(0.02)
            sync.send_signal(signal.SIGKILL)
        finally:
            sync.kill()
            sync.wait()
        assert sync.returncode == -signal.SIGKILL

        partial = stored_leads(store)
        assert 0 < partial < LEADS and partial % CHUNK == 0  # whole chunks only
        assert store.get_state("crm", "Lead") is None  # the killed run recorded no success, moved no watermark
        assert not store.sync_log("crm", event=SyncEvent.SYNC_COMPLETED)

        org.control.clear_faults()
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        assert run_sync(load_config(config_file), ["crm"], full=False) == 0

        users = store.users("acme")
        assert len(users) == users["external_id"].nunique() == LEADS
        assert_same_rows(stored_rows(store, "acme", "crm", "Lead"),
                         oracle_rows(org.simple_salesforce(), "crm", "Lead", datetime(2100, 1, 1, tzinfo=UTC),
                                     rules_soql=""))
        assert store.get_state("crm", "Lead").last_success_window_end == start + HOUR
