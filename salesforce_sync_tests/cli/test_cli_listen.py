"""`salesforce-sync listen`, the standing change-capture listener, as its own process against the emulated org:
a change reaches the store within seconds, each micro-sync shows on the Dagster instance's asset pages with its
lag, SIGTERM stops it with the replay id at the last applied event; and what `change_capture.mode` accepts."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from salesforce_sync.config.errors import ConfigError
from salesforce_sync.config.loader import load_config
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.health import check_change_capture
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.cli.cli_support import config_text, emulator_integration, full_sync, set_app_credentials

WITHIN_SECONDS = 5.0
RULES = """
        sync_rules:
          match: all
          rules: [{field: Email, operator: is_set}]
        field_mappings: []"""
OBJECTS = "      Contact:" + RULES + "\n      Lead:" + RULES


def change_capture(org: EmulatedOrg, mode: str = "listener") -> str:
    return (f"    change_capture:\n      enabled: true\n      mode: {mode}\n      pubsub_url: {org.pubsub_url}\n"
            f"      debounce_seconds: 0.3\n      drain_seconds: 2\n")


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> float:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - began


class ListenProcess:
    """`salesforce-sync listen crm` in a subprocess, stopped by SIGTERM on exit; its output once it ended."""

    def __init__(self) -> None:
        environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
        self.process = subprocess.Popen([sys.executable, "-m", "salesforce_sync.cli", "listen", "crm"],
                                        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stdout = self.stderr = ""

    def running(self) -> bool:
        """True while the process runs; fails with its output once it ended."""
        if self.process.poll() is not None:
            out, err = self.process.communicate()
            pytest.fail(f"listen ended with {self.process.returncode}:\n{out}\n{err}")
        return True

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        self.stdout, self.stderr = self.process.communicate(timeout=30)
        return self.process.returncode

    def __enter__(self) -> ListenProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    """A small org whose idle subscriptions get a keepalive (and so a first position) every 0.2 s."""
    started = EmulatedOrg(tls_dir=tmp_path_factory.mktemp("tls"), counts={"Lead": 20, "Contact": 10},
                          settings={"pubsub_keepalive_seconds": 0.2}).start()
    yield started
    started.stop()


@pytest.fixture
def listening(org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
              store: AudienceStore) -> Iterator[None]:
    """An integration in listener mode whose objects a window sync already stored."""
    set_app_credentials(monkeypatch, org, refresh_token=True)
    path = use_config(config_text(emulator_integration(org, objects=OBJECTS, extra=change_capture(org))))
    full_sync(load_config(path).integrations[0], store)
    yield


def contact_name(store: AudienceStore, record_id: str) -> str:
    users = store.users("acme", "crm", "Contact")
    return users.set_index("salesforce_id").at[record_id, "last_name"]


def replay_id(store: AudienceStore) -> bytes | None:
    state = store.change_capture_state("crm")
    return state.replay_id if state else None


def test_listen_applies_changes_reports_them_to_dagster_and_stops_cleanly_on_sigterm(
        org: EmulatedOrg, store: AudienceStore, cli_env: Path, listening: None) -> None:
    sf = org.simple_salesforce()
    first, second = (record["Id"] for record in sf.query("SELECT Id FROM Contact WHERE Email != null "
                                                         "AND IsDeleted = false LIMIT 2")["records"])
    with ListenProcess() as listener:
        wait_until(lambda: listener.running() and replay_id(store) is not None, 30, "the subscription's first position")
        sf.Contact.update(first, {"LastName": "Standing"})
        took = wait_until(lambda: contact_name(store, first) == "Standing", WITHIN_SECONDS, "the change stored")
        assert took < WITHIN_SECONDS
        with dg.DagsterInstance.from_config(str(cli_env / "dagster_home")) as instance:
            def observed() -> list[dg.EventLogRecord]:
                return instance.fetch_observations(dg.AssetKey(["salesforce", "crm", "Contact"]), limit=10).records

            wait_until(observed, WITHIN_SECONDS, "the micro-sync's observation on the Dagster instance")
            (record,) = observed()
            assert record.run_id == ""  # runless: reported by the listener, not by a run
            metadata = record.asset_observation.metadata
            assert metadata["records_updated"].value == 1 and metadata["events"].value == 1
            assert 0 <= metadata["lag_max_seconds"].value < WITHIN_SECONDS
            assert metadata["reported_by"].value == "salesforce-sync listen"
        applied = replay_id(store)
        assert listener.stop() == 0, listener.stderr
    assert "crm: micro-sync of 1 change events: 1 records applied (0 imported, 1 updated, 0 deleted), lag" \
        in listener.stdout
    assert f"crm: stopped; stored replay id {applied.hex()}" in listener.stdout
    assert listener.stderr == ""
    assert replay_id(store) == applied
    integration = load_config().integrations[0]
    assert check_change_capture(integration, store.change_capture_state("crm"), dt.datetime.now(dt.UTC)).passed

    # The stored replay id is exactly after the last applied event: a restart applies only what came later.
    sf.Contact.update(second, {"LastName": "Later"})
    with ListenProcess() as restarted:
        wait_until(lambda: contact_name(store, second) == "Later", 30, "the later change stored")
        wait_until(lambda: replay_id(store) != applied, WITHIN_SECONDS, "the replay id moved")
        assert restarted.stop() == 0, restarted.stderr
    assert "crm: micro-sync of 1 change events: 1 records applied (0 imported, 1 updated, 0 deleted)" \
        in restarted.stdout
    assert restarted.stdout.count("micro-sync of") == 1  # the first change was not applied again


def test_listen_refuses_an_integration_whose_sensor_listens(org: EmulatedOrg, use_config: Callable[[str], Path],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from salesforce_sync.cli import main

    use_config(config_text(emulator_integration(org, objects=OBJECTS, extra=change_capture(org, "sensor"))))
    assert main(["listen", "crm"]) == 1
    assert capsys.readouterr().err.strip() == (
        "salesforce-sync listen: error: integration 'crm': no standing listener: change_capture.mode is sensor "
        "(its change_capture_crm sensor listens under Dagster's daemon; set mode: listener to use this command)")


def test_change_capture_mode_must_be_sensor_or_listener(org: EmulatedOrg, use_config: Callable[[str], Path]) -> None:
    path = use_config(config_text(emulator_integration(org, objects=OBJECTS, extra=change_capture(org, "daemon"))))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert "crm" in message and "change_capture" in message and "mode" in message and "daemon" in message
