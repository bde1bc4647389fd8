"""Near-real-time sync from change events, against an emulated org over TLS/gRPC and a store on SQLite and
PostgreSQL: writes reach the store within seconds, exactly once, and exactly as a window stores them; a restart
resumes from the stored replay id; gap, overflow and expired replay ids fall back to re-reads that restore
exactness; our own write-back's changes are not echoed."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import dagster as dg
import pytest
from simple_salesforce import Salesforce

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.dagster_defs.definitions import build_definitions
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.change_capture import listen
from salesforce_sync.runs.connection import connect
from salesforce_sync.runs.health import check_change_capture
from salesforce_sync.runs.lease import acquire_lease, cli_holder
from salesforce_sync.runs.micro_sync import MicroSyncResult
from salesforce_sync.runs.window import SyncWindow
from salesforce_sync.store import AudienceStore, ChangeCaptureState, SyncEvent
from salesforce_sync_tests.pipeline.support import (
    HOUR,
    assert_same_rows,
    https_integration,
    load_config,
    oracle_rows,
    set_auth_env,
    stored_rows,
    sync_window,
)

ORG_SEED = 31
ORG_COUNTS = {"Lead": 30, "Contact": 12, "CampaignMember": 8}
SETTINGS = {"pubsub_keepalive_seconds": 0.2}
OBJECTS = ("Lead", "Contact", "CampaignMember")
WITHIN_SECONDS = 5.0


@pytest.fixture
def org(emulated_org_factory: Callable[..., EmulatedOrg], monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> EmulatedOrg:
    settings = {**SETTINGS, **getattr(request, "param", {})}
    org = emulated_org_factory(seed=ORG_SEED, counts=ORG_COUNTS, settings=settings)
    set_auth_env(monkeypatch, org)
    return org


def integration_of(org: EmulatedOrg, start: dt.datetime, **change_capture: Any) -> IntegrationConfig:
    settings = {"enabled": True, "pubsub_url": org.pubsub_url, "debounce_seconds": 0.3, "drain_seconds": 2,
                **change_capture}
    return load_config(https_integration(org, "crm", "acme", start, change_capture=settings)).integrations[0]


def synced_by_window(store: AudienceStore, integration: IntegrationConfig, start: dt.datetime) -> None:
    sync_window(store, integration, SyncWindow(start, start + HOUR, first=True, full=True))


def assert_store_matches_org(store: AudienceStore, sf: Salesforce, objects: tuple[str, ...] = OBJECTS) -> None:
    end = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)  # whatever the org's clock says
    for object_type in objects:
        rows, expected = stored_rows(store, "acme", "crm", object_type), oracle_rows(sf, "crm", object_type, end)
        gone = {key: row for key, row in rows.items() if key not in expected}  # hard-deleted: the org lists none
        assert all(row["deleted"] for row in gone.values()), gone
        assert_same_rows({key: row for key, row in rows.items() if key not in gone}, expected)


class Listener:
    """`listen` in a thread, with its own client and store connection, as a long-running process would."""

    def __init__(self, store_url: str, integration: IntegrationConfig) -> None:
        self.results: list[MicroSyncResult] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(store_url, integration), daemon=True)

    def _run(self, store_url: str, integration: IntegrationConfig) -> None:
        try:
            with AudienceStore(store_url) as store, connect(integration) as client:
                listen(store, client, integration, stop=self.stop, on_applied=self.results.append)
        except BaseException as err:  # noqa: BLE001 - the test reports it
            self.error = err

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(timeout=30)
        assert self.error is None, self.error


def wait_until(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> float:
    """Seconds until `condition()` holds; fails after `timeout`."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - began


def subscribed(store: AudienceStore) -> bool:
    state = store.change_capture_state("crm")
    return state is not None and state.replay_id is not None


def micro_synced(store: AudienceStore) -> list[Any]:
    return store.sync_log("crm", SyncEvent.MICRO_SYNCED, limit=1000)


@pytest.fixture
def synced(org: EmulatedOrg, store: AudienceStore, start: dt.datetime) -> Iterator[IntegrationConfig]:
    integration = integration_of(org, start)
    synced_by_window(store, integration, start)
    yield integration


def stored(store: AudienceStore, object_type: str, record_id: str) -> dict[str, Any] | None:
    return stored_rows(store, "acme", "crm", object_type).get(f"sf_crm_{object_type}_{record_id}")


def test_update_create_delete_and_opt_out_reach_the_store_within_seconds_exactly_once(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, store_url: str, synced: IntegrationConfig) -> None:
    lead = sf.query("SELECT Id FROM Lead WHERE Email != null AND IsDeleted = false AND HasOptedOutOfEmail = false "
                    "AND Status != 'Closed - Not Converted' LIMIT 3")["records"]
    updated, gone, flipped = (record["Id"] for record in lead)
    member = sf.query(f"SELECT Id FROM CampaignMember WHERE LeadId = '{flipped}'")["records"]
    with Listener(store_url, synced):
        wait_until(lambda: subscribed(store), what="the subscription's first position")
        sf.Lead.update(updated, {"Company": "Near Real Time Inc"})
        took = wait_until(lambda: stored(store, "Lead", updated)["properties"]["company"] == "Near Real Time Inc")
        assert took < WITHIN_SECONDS
        created = sf.Lead.create({"LastName": "Fresh", "Company": "New Co", "Email": "fresh@example.com"})["id"]
        took = wait_until(lambda: stored(store, "Lead", created) is not None)
        assert took < WITHIN_SECONDS
        sf.Lead.delete(gone)
        took = wait_until(lambda: stored(store, "Lead", gone)["deleted"])
        assert took < WITHIN_SECONDS
        sf.Lead.update(flipped, {"HasOptedOutOfEmail": True})
        took = wait_until(lambda: stored(store, "Lead", flipped)["unsubscribed"] is True)
        assert took < WITHIN_SECONDS
        if member:  # the opt-out reaches the Lead's campaign memberships too (read through their Lead)
            wait_until(lambda: stored(store, "CampaignMember", member[0]["Id"])["unsubscribed"] is True)
        time.sleep(1.0)  # anything echoed or repeated would land now
    assert stored(store, "Lead", gone)["deleted"]
    assert_store_matches_org(store, sf)
    lead_entries = [entry for entry in micro_synced(store) if entry.object_type == "Lead"]
    applied = [(entry.details["imported"], entry.details["updated"], entry.details["deleted"]) for entry in lead_entries]
    assert tuple(map(sum, zip(*applied))) == (1, 2, 1)  # one create, two updates, one delete: each exactly once
    # A window over the same time finds nothing a micro-sync has not already stored exactly.
    results = sync_window(store, synced, SyncWindow(synced.start, synced.start + HOUR, first=True, full=True))
    assert all(result.counts.changed == 0 for result in results.values())


def test_restart_resumes_from_the_stored_replay_id_without_loss_or_repeats(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, store_url: str, synced: IntegrationConfig) -> None:
    ids = [record["Id"] for record in sf.query("SELECT Id FROM Contact LIMIT 4")["records"]]
    with Listener(store_url, synced):
        wait_until(lambda: subscribed(store))
        sf.Contact.update(ids[0], {"FirstName": "Before"})
        wait_until(lambda: stored(store, "Contact", ids[0])["first_name"] == "Before")
    position = store.change_capture_state("crm").replay_id
    for record_id in ids[1:]:  # while nothing listens
        sf.Contact.update(record_id, {"FirstName": "While Down"})
    with Listener(store_url, synced) as listener:
        wait_until(lambda: all(stored(store, "Contact", i)["first_name"] == "While Down" for i in ids[1:]))
        time.sleep(0.8)
    assert store.change_capture_state("crm").replay_id != position
    assert sum(result.by_object["Contact"].updated for result in listener.results) == 3  # the three missed, once
    assert_store_matches_org(store, sf, ("Contact",))


def test_gap_event_rereads_its_records(org: EmulatedOrg, sf: Salesforce, store: AudienceStore, store_url: str,
                                       synced: IntegrationConfig) -> None:
    record_id = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
    with Listener(store_url, synced):
        wait_until(lambda: subscribed(store))
    # A change whose own event never reaches us (the subscription starts after it), then Salesforce's gap event.
    store.advance_replay_id("crm", synced.change_capture.topic, after=store.change_capture_state("crm").replay_id,
                            until=None)
    sf.Contact.update(record_id, {"LastName": "Changed Unseen"})
    with Listener(store_url, synced):
        wait_until(lambda: subscribed(store))
        assert stored(store, "Contact", record_id)["last_name"] != "Changed Unseen"
        org.control.force_gap_event("Contact", [record_id])
        wait_until(lambda: stored(store, "Contact", record_id)["last_name"] == "Changed Unseen", timeout=WITHIN_SECONDS)
    assert_store_matches_org(store, sf, ("Contact",))


@pytest.mark.parametrize("org", [{"change_event_overflow_changes": 4}], indirect=True)
def test_overflow_event_resyncs_the_object_by_window(org: EmulatedOrg, sf: Salesforce, store: AudienceStore,
                                                     store_url: str, synced: IntegrationConfig) -> None:
    ids = [record["Id"] for record in sf.query("SELECT Id FROM Contact LIMIT 8")["records"]]
    with Listener(store_url, synced) as listener:
        wait_until(lambda: subscribed(store))
        # One transaction of more changes than the org sends events for: the rest is one GAP_OVERFLOW event.
        sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": [
            {"attributes": {"type": "Contact"}, "id": record_id, "FirstName": f"Bulk {n}"}
            for n, record_id in enumerate(ids)]})
        wait_until(lambda: all(stored(store, "Contact", i)["first_name"] == f"Bulk {n}" for n, i in enumerate(ids)),
                   timeout=WITHIN_SECONDS)
    assert any("Contact" in result.resynced for result in listener.results)
    assert_store_matches_org(store, sf, ("Contact",))


def test_expired_replay_id_falls_back_to_a_window_resync(org: EmulatedOrg, sf: Salesforce, store: AudienceStore,
                                                         store_url: str, synced: IntegrationConfig) -> None:
    ids = [record["Id"] for record in sf.query("SELECT Id FROM Contact LIMIT 2")["records"]]
    with Listener(store_url, synced):
        wait_until(lambda: subscribed(store))
        sf.Contact.update(ids[0], {"FirstName": "Applied"})
        wait_until(lambda: stored(store, "Contact", ids[0])["first_name"] == "Applied")
    expired = store.change_capture_state("crm").replay_id
    org.control.move_clock(dt.timedelta(hours=73))  # the stored replay id is past the 72 h retention now
    sf = org.simple_salesforce()
    sf.Contact.update(ids[1], {"FirstName": "After Expiry"})
    with Listener(store_url, synced) as listener:
        wait_until(lambda: stored(store, "Contact", ids[1])["first_name"] == "After Expiry")
        wait_until(lambda: store.change_capture_state("crm").replay_id not in (None, expired))
    assert {"Lead", "Contact", "CampaignMember"} <= {o for result in listener.results for o in result.resynced}
    assert_store_matches_org(store, sf)


def test_own_write_back_is_not_echoed_and_the_window_sync_applies_it(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, store_url: str, synced: IntegrationConfig) -> None:
    record_id = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
    before = stored(store, "Contact", record_id)
    with Listener(store_url, synced) as listener:
        wait_until(lambda: subscribed(store))
        position = store.change_capture_state("crm").replay_id
        sf.Contact.update(record_id, {"FirstName": "Written Back"},
                          headers={"Sforce-Call-Options": "client=salesforce-sync"})
        wait_until(lambda: store.change_capture_state("crm").replay_id != position)  # read, and stepped over
        time.sleep(0.8)
    assert listener.results == []  # no micro-sync: nothing read, nothing written, nothing downstream
    assert stored(store, "Contact", record_id) == before
    assert store.change_capture_state("crm").events_applied == 1
    results = sync_window(store, synced, SyncWindow(synced.start, synced.start + HOUR, first=True, full=True))
    assert results["Contact"].counts.updated == 1
    assert stored(store, "Contact", record_id)["first_name"] == "Written Back"
    assert_store_matches_org(store, sf, ("Contact",))


def test_sensor_requests_a_micro_sync_run_that_applies_the_events(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, synced: IntegrationConfig) -> None:
    settings = synced.change_capture.model_dump(mode="json")
    defs = build_definitions(load_config(https_integration(org, "crm", "acme", synced.start,
                                                           change_capture=settings)))
    sensor = defs.resolve_sensor_def("change_capture_crm")
    job = defs.resolve_job_def("micro_sync_crm")
    record_id = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
    with dg.DagsterInstance.ephemeral() as instance:
        def tick() -> dg.SensorResult | dg.SkipReason:
            return sensor(dg.build_sensor_context(instance=instance, definitions=defs,
                                                  resources={"audience_store": defs.resources["audience_store"]}))

        wait_until(lambda: isinstance(tick(), dg.SkipReason) and subscribed(store))
        sf.Contact.update(record_id, {"LastName": "Sensed"})
        result = tick()
        assert isinstance(result, dg.SensorResult), result
        (request,) = result.run_requests
        assert stored(store, "Contact", record_id)["last_name"] != "Sensed"  # the run applies, not the sensor
        assert store.change_capture_state("crm").pending_since is not None
        outcome = job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
        assert outcome.success
        assert stored(store, "Contact", record_id)["last_name"] == "Sensed"
        state = store.change_capture_state("crm")
        assert state.replay_id.hex() == result.cursor and state.pending_since is None
        observed = {event.asset_key.path[-1]: event.asset_observation_data.asset_observation.metadata
                    for event in outcome.get_asset_observation_events()}
        assert observed["Contact"]["records_updated"].value == 1
        assert 0 <= observed["Contact"]["lag_max_seconds"].value < WITHIN_SECONDS
        assert isinstance(tick(), dg.SkipReason)  # nothing new: no second run
        health = defs.resolve_job_def("health_crm").execute_in_process(instance=instance, raise_on_error=False)
        evaluations = {(e.asset_key.path[-1], e.check_name): e.passed
                       for e in (event.event_specific_data for event in health.all_events
                                 if event.event_type_value == "ASSET_CHECK_EVALUATION")}
        assert {evaluations[(o, "change_capture")] for o in OBJECTS} == {True}


def test_change_capture_check_fails_when_behind_or_stopped(synced: IntegrationConfig) -> None:
    now = dt.datetime.now(dt.UTC)
    limit = dt.timedelta(seconds=synced.change_capture.lag_threshold_seconds + 1)
    state = ChangeCaptureState("crm", "/data/ChangeEvents", b"\x01", now, now, now, None, 0.5, 3)
    assert check_change_capture(synced, state, now).passed
    assert not check_change_capture(synced, None, now).passed
    stopped = check_change_capture(synced, replace(state, heard_at=now - limit), now)
    assert not stopped.passed and "stopped" in stopped.message
    waiting = check_change_capture(synced, replace(state, pending_since=now - limit), now)
    assert not waiting.passed and "behind" in waiting.message
    slow = check_change_capture(synced, replace(state, last_lag_seconds=limit.total_seconds()), now)
    assert not slow.passed and "behind" in slow.message


def test_cut_stream_and_expired_token_are_survived(org: EmulatedOrg, sf: Salesforce, store: AudienceStore,
                                                   store_url: str, synced: IntegrationConfig) -> None:
    record_id = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
    with Listener(store_url, synced):
        wait_until(lambda: subscribed(store))
        org.control.expire_sessions()  # the listener's access token is no good any more...
        org.control.cut_pubsub_streams()  # ...and its stream ends: it must re-authenticate and resubscribe
        sf = org.simple_salesforce()
        sf.Contact.update(record_id, {"LastName": "After The Cut"})
        wait_until(lambda: stored(store, "Contact", record_id)["last_name"] == "After The Cut", timeout=WITHIN_SECONDS)
    assert_store_matches_org(store, sf, ("Contact",))


def test_records_leaving_the_rules_or_the_org_stop_being_live(org: EmulatedOrg, sf: Salesforce, store: AudienceStore,
                                                              store_url: str, synced: IntegrationConfig) -> None:
    leaving, purged = (record["Id"] for record in sf.query(
        "SELECT Id FROM Lead WHERE Email != null AND IsDeleted = false AND IsConverted = false "
        "AND Status != 'Closed - Not Converted' LIMIT 2")["records"])

    def removed_reason(record_id: str) -> str | None:
        users = store.users("acme", "crm", "Lead")
        return users.set_index("salesforce_id").at[record_id, "removed_reason"]

    with Listener(store_url, synced):
        wait_until(lambda: subscribed(store))
        sf.Lead.update(leaving, {"Email": None})  # no longer matches the rule `Email is_set`
        org.control.hard_delete("Lead", [purged])  # gone without a trace, recycle bin included
        wait_until(lambda: removed_reason(leaving) == "out_of_scope" and removed_reason(purged) == "hard_deleted",
                   timeout=WITHIN_SECONDS)
    assert_store_matches_org(store, sf, ("Lead",))


def test_a_micro_sync_waits_for_a_window_sync_holding_the_lease(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, store_url: str, synced: IntegrationConfig) -> None:
    record_id = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
    with Listener(store_url, synced):
        wait_until(lambda: subscribed(store))
        position = store.change_capture_state("crm").replay_id
        with acquire_lease(store, "crm", cli_holder(), wait=dt.timedelta(0)):  # a window sync runs meanwhile
            sf.Contact.update(record_id, {"LastName": "Waited"})
            time.sleep(2.0)
            assert stored(store, "Contact", record_id)["last_name"] != "Waited"
            assert store.change_capture_state("crm").replay_id == position  # nothing applied, nothing moved
        wait_until(lambda: stored(store, "Contact", record_id)["last_name"] == "Waited", timeout=WITHIN_SECONDS)
