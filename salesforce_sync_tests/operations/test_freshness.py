"""Dagster's freshness checks on an integration's assets: the `freshness_<integration>` sensor asks for them, and
they fail before the first sync and pass right after it (a materialization within twice the frequency)."""

from __future__ import annotations

import dagster as dg
import pytest

from salesforce_sync.dagster_defs.definitions import build_definitions
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync_tests.operations.support import OBJECTS, QUIET_RUN, build_config, org_integration, run_job


def freshness(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict[str, bool]:
    """Run what the freshness sensor requests; passed per object."""
    context = dg.build_sensor_context(instance=instance, definitions=defs)
    [request] = defs.resolve_sensor_def("freshness_fresh").evaluate_tick(context).run_requests
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(), asset_check_selection=set(request.asset_check_keys))
    result = job.execute_in_process(instance=instance, run_config=QUIET_RUN, raise_on_error=False)
    return {e.asset_key.path[-1]: e.passed for e in result.get_asset_check_evaluations()}


@pytest.mark.slow
def test_freshness_checks_fail_before_the_first_sync_and_pass_after_it(
        org: EmulatedOrg, app_store_url: str, instance: dg.DagsterInstance) -> None:
    # Its own integration id: the session's instance keeps other tests' materializations of `acme`.
    defs = build_definitions(build_config(org_integration(org, "fresh", objects={"Lead": OBJECTS["Lead"]})))
    assert freshness(defs, instance) == {"Lead": False}
    context = dg.build_sensor_context(instance=instance, definitions=defs,
                                      resources={"audience_store": defs.resources["audience_store"]})
    tags = defs.resolve_sensor_def("sync_fresh_windows")(context).run_requests[0].tags
    assert run_job(defs, "sync_fresh", instance, tags).success
    assert freshness(defs, instance) == {"Lead": True}
