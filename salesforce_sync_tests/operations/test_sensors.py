"""The schedule sensors evaluated on a Dagster instance against the audience store's state (SQLite and
PostgreSQL): which windows they request after downtime, at first and when up to date, how they cap
catch-ups, keep run keys stable for de-duplication, wait for running syncs, and which integrations
get none. Time moves by giving integrations a `start` hours ago and a store state at an earlier window.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteRepositoryOrigin

from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, asset_key
from salesforce_sync.dagster_defs.definitions import build_definitions
from salesforce_sync.dagster_defs.sensors import MAX_WINDOWS_PER_RUN, RANGE_END_TAG, RANGE_START_TAG
from salesforce_sync.store import AudienceStore, UpsertCounts
from salesforce_sync_tests.operations.support import (
    HOUR,
    build_config,
    hours_ago,
    key,
    last_complete_window_start,
    offline_integration,
)


@pytest.fixture
def store(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AudienceStore]:
    """The audience store the definitions read through AUDIENCE_STORE_URL, as a deployment's sensors do."""
    monkeypatch.setenv("SALESFORCE_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AUDIENCE_STORE_URL", store_url)
    with AudienceStore(store_url) as audience:
        yield audience


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


class Sensor:
    """The `sync_<id>_windows` sensor of a config, evaluated the way the daemon does (definitions' resources)."""

    def __init__(self, instance: dg.DagsterInstance, *integrations: dict[str, Any]) -> None:
        self.instance = instance
        self.defs = build_definitions(build_config(*integrations))
        self.sensor = self.defs.resolve_sensor_def(f"sync_{integrations[0]['id']}_windows")

    def evaluate(self) -> tuple[dg.SensorResult | dg.SkipReason, set[str]]:
        """The result and the last complete window's key (two if the hour turned during the evaluation)."""
        before = key(last_complete_window_start())
        context = dg.build_sensor_context(instance=self.instance, definitions=self.defs,
                                          resources={"audience_store": self.defs.resources["audience_store"]})
        result = self.sensor(context)
        return result, {before, key(last_complete_window_start())}

    def request(self) -> tuple[dg.RunRequest, set[str]]:
        result, last_keys = self.evaluate()
        assert isinstance(result, dg.SensorResult), result
        assert len(result.run_requests) == 1
        return result.run_requests[0], last_keys


def synced_up_to(store: AudienceStore, window_end: datetime, *object_types: str) -> None:
    for object_type in object_types or ("Lead", "Contact"):
        store.record_success("acme", object_type, window_end=window_end, counts=UpsertCounts())


def windows_between(first_key: str, last_key: str) -> int:
    return int((datetime.strptime(last_key, "%Y-%m-%d-%H:%M") - datetime.strptime(first_key, "%Y-%m-%d-%H:%M"))
               / HOUR) + 1


def test_after_downtime_the_missed_windows_go_in_one_ranged_run(store: AudienceStore,
                                                               instance: dg.DagsterInstance) -> None:
    sensor = Sensor(instance, offline_integration("acme", start=hours_ago(10).isoformat()))
    synced_up_to(store, hours_ago(6), "Lead")
    synced_up_to(store, hours_ago(4), "Contact")  # the object furthest behind sets where the run resumes
    request, last_keys = sensor.request()
    start, end = request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]
    assert start == key(hours_ago(6))
    assert end in last_keys
    assert request.tags[INTEGRATION_TAG] == "acme"
    assert request.run_key == f"acme:{start}..{end}:ok"


def test_the_initial_sync_requests_the_full_range_in_one_run(store: AudienceStore,
                                                            instance: dg.DagsterInstance) -> None:
    start = hours_ago(24 * 30)
    sensor = Sensor(instance, offline_integration("acme", start=start.isoformat()))
    request, last_keys = sensor.request()
    assert request.tags[RANGE_START_TAG] == key(start)
    assert request.tags[RANGE_END_TAG] in last_keys
    assert windows_between(request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) > MAX_WINDOWS_PER_RUN


def test_a_long_catch_up_is_capped_and_continues_where_the_last_run_ended(store: AudienceStore,
                                                                         instance: dg.DagsterInstance) -> None:
    start = hours_ago(24 * 30)
    sensor = Sensor(instance, offline_integration("acme", start=start.isoformat()))
    synced_up_to(store, start + HOUR)
    request, _ = sensor.request()
    assert request.tags[RANGE_START_TAG] == key(start + HOUR)
    assert request.tags[RANGE_END_TAG] == key(start + MAX_WINDOWS_PER_RUN * HOUR)
    assert windows_between(request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == MAX_WINDOWS_PER_RUN
    synced_up_to(store, start + (MAX_WINDOWS_PER_RUN + 1) * HOUR)
    following, _ = sensor.request()
    assert following.tags[RANGE_START_TAG] == key(start + (MAX_WINDOWS_PER_RUN + 1) * HOUR)


def test_run_keys_repeat_until_the_state_moves_so_the_daemon_drops_duplicates(store: AudienceStore,
                                                                              instance: dg.DagsterInstance) -> None:
    sensor = Sensor(instance, offline_integration("acme", start=hours_ago(10).isoformat()))
    synced_up_to(store, hours_ago(6))
    first, last_keys = sensor.request()
    again, _ = sensor.request()
    if len(last_keys) == 1:  # the hour did not turn between the two evaluations
        assert again.run_key == first.run_key
    store.record_failure("acme", "Lead", error="integration 'acme': GET queryAll failed with HTTP 500")
    retry, _ = sensor.request()
    assert retry.tags[RANGE_START_TAG] == first.tags[RANGE_START_TAG]
    assert retry.run_key != first.run_key  # a failed range is requested again
    synced_up_to(store, hours_ago(3))
    progressed, _ = sensor.request()
    assert progressed.tags[RANGE_START_TAG] == key(hours_ago(3))
    assert progressed.run_key not in {first.run_key, retry.run_key}


def test_an_up_to_date_integration_requests_nothing(store: AudienceStore, instance: dg.DagsterInstance) -> None:
    sensor = Sensor(instance, offline_integration("acme", start=hours_ago(10).isoformat()))
    synced_up_to(store, hours_ago(0))
    result, _ = sensor.evaluate()
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == "no completed window since the last successful sync"


def add_run(instance: dg.DagsterInstance, integration_id: str, status: dg.DagsterRunStatus, *,
            ui: bool = False) -> dg.DagsterRun:
    """A run of the integration's sync job in `status`, as the daemon's launch leaves it; with `ui`, a
    Materialize or backfill from the UI instead: the implicit asset job with the integration's asset
    selected and no integration tag. Dagster only stores queued runs with the code location they came
    from; a registered one's name is enough."""
    job_name = "__ASSET_JOB" if ui else f"sync_{integration_id}"
    origin = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("operations_test"), "__repository__")
    return instance.add_run(dg.DagsterRun(
        job_name=job_name, status=status, tags={} if ui else {INTEGRATION_TAG: integration_id},
        asset_selection=frozenset({asset_key(integration_id, "Lead")}) if ui else None,
        remote_job_origin=origin.get_job_origin(job_name)))


@pytest.mark.parametrize("ui", [False, True], ids=["sync job", "UI materialize"])
@pytest.mark.parametrize("status", [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTED,
                                    dg.DagsterRunStatus.CANCELING])
def test_the_sensor_waits_while_a_run_of_the_integration_is_queued_or_running(
        store: AudienceStore, instance: dg.DagsterInstance, status: dg.DagsterRunStatus, ui: bool) -> None:
    sensor = Sensor(instance, offline_integration("acme"), offline_integration("other"))
    add_run(instance, "other", status, ui=ui)
    assert isinstance(sensor.evaluate()[0], dg.SensorResult)  # another integration's run does not block it
    instance.add_run(dg.DagsterRun(job_name="health_acme", status=dg.DagsterRunStatus.STARTED,
                                   tags={INTEGRATION_TAG: "acme"}))
    assert isinstance(sensor.evaluate()[0], dg.SensorResult)  # nor do its health checks
    run = add_run(instance, "acme", status, ui=ui)
    waiting, _ = sensor.evaluate()
    assert isinstance(waiting, dg.SkipReason)
    assert waiting.skip_message == f"run {run.run_id} of acme is still queued or running"
    instance.report_run_failed(run)
    assert isinstance(sensor.evaluate()[0], dg.SensorResult)


def test_inactive_manual_and_incomplete_integrations_get_no_windows_or_freshness_sensor(store: AudienceStore) -> None:
    unfinished = offline_integration("unfinished")
    del unfinished["environment"]
    defs = build_definitions(build_config(
        offline_integration("acme"), offline_integration("paused", active=False),
        offline_integration("by_hand", frequency="manual"), unfinished))
    names = {sensor.name for sensor in defs.sensors}
    assert names == {"sync_acme_windows", "freshness_acme", "refresh_acme_formulas", "sync_failure_log",
                     "sync_success_status", "people_automation"}  # every project with objects has people



def test_historical_only_requests_its_initial_import_then_nothing(store: AudienceStore,
                                                                  instance: dg.DagsterInstance) -> None:
    start = hours_ago(10)
    sensor = Sensor(instance, offline_integration("acme", start=start.isoformat(), history="historical_only"))
    request, _ = sensor.request()
    assert request.tags[RANGE_START_TAG] == key(start)
    synced_up_to(store, hours_ago(5))
    result, _ = sensor.evaluate()
    assert isinstance(result, dg.SkipReason)
    assert "historical_only" in result.skip_message
