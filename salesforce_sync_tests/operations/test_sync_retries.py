"""A transient Salesforce failure inside a Dagster sync run: retried, logged as a warning in the run's own log
(naming the call and the attempt), and the run succeeds."""

from __future__ import annotations

import dagster as dg
import pytest

from salesforce_sync.dagster_defs.definitions import build_definitions
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.operations.support import (
    OBJECTS,
    build_config,
    hours_ago,
    key,
    org_integration,
    range_tags,
    run_job,
)


@pytest.mark.slow
def test_a_retried_503_is_a_warning_in_the_run_log_and_the_run_succeeds(
        org: EmulatedOrg, app_store_url: str, instance: dg.DagsterInstance) -> None:
    defs = build_definitions(build_config(org_integration(org, objects={"Lead": OBJECTS["Lead"]})))
    org.control.inject_error(r"/queryAll$", 503, "SERVER_UNAVAILABLE", "Server is unavailable")

    result = run_job(defs, "sync_acme", instance, range_tags(key(hours_ago(3)), key(hours_ago(1))))

    assert result.success
    warnings = [entry.user_message for entry in instance.all_logs(result.run_id)
                if entry.level == 30 and "attempt 1 of 5 failed" in entry.user_message]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "integration 'acme': GET queryAll: attempt 1 of 5 failed (HTTP 503 SERVER_UNAVAILABLE); retrying in ")
    with AudienceStore(app_store_url) as store:
        assert store.get_state("acme", "Lead").last_success_window_end == hours_ago(0)
