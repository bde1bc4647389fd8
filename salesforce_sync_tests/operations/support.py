"""Shared pieces of the operations tests: integration configs pointing at an emulated org over HTTPS
(or at the embedded emulator where no org is contacted), hour arithmetic for partition keys, and
in-process Dagster runs with quiet logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
import yaml

from salesforce_sync.config.loader import parse_config
from salesforce_sync.config.models import SyncConfig
from salesforce_sync.dagster_defs.assets import PARTITION_FORMAT
from salesforce_sync.emulator.harness import EmulatedOrg

HOUR = timedelta(hours=1)
PROJECT = "ops"
AUTH_ENV = {"client_id": "OPS_SF_CLIENT_ID", "client_secret": "OPS_SF_CLIENT_SECRET",
            "refresh_token": "OPS_SF_REFRESH_TOKEN"}
AUTH = {"method": "refresh_token", "client_id_env": AUTH_ENV["client_id"],
        "client_secret_env": AUTH_ENV["client_secret"], "refresh_token_env": AUTH_ENV["refresh_token"]}
OBJECTS: dict[str, Any] = {
    "Lead": {"sync_rules": {"rules": []},
             "field_mappings": [{"field": "Company", "property": "company", "type": "string"},
                                {"field": "Lead_Score__c", "property": "lead_score", "type": "number"}]},
    "Contact": {"sync_rules": {"rules": []},
                "field_mappings": [{"field": "Account.Name", "property": "company", "type": "string"}]},
}
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def hours_ago(hours: int) -> datetime:
    """The start of the hour `hours` before the current one (UTC): an hourly partition boundary."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - hours * HOUR


def key(moment: datetime) -> str:
    """The partition key of the window starting at `moment`."""
    return moment.strftime(PARTITION_FORMAT)


def last_complete_window_start() -> datetime:
    return hours_ago(1)


def set_auth_env(monkeypatch: pytest.MonkeyPatch, org: EmulatedOrg) -> None:
    """The refresh-token login an https:// integration reads from the environment at run time."""
    info = org.connection_info()
    for setting, variable in AUTH_ENV.items():
        monkeypatch.setenv(variable, info[setting])


def org_integration(org: EmulatedOrg, integration_id: str = "acme", **settings: Any) -> dict[str, Any]:
    """An hourly integration of Lead and Contact logging in to `org` over HTTPS, as a production one does."""
    return {"id": integration_id, "project": PROJECT, "environment": org.base_url, "ca_file": org.ca_file,
            "auth": AUTH, "frequency": 60, "start": hours_ago(3).isoformat(), "objects": OBJECTS, **settings}


def offline_integration(integration_id: str, **settings: Any) -> dict[str, Any]:
    """A complete hourly integration on the embedded emulator, for tests that never contact an org."""
    return {"id": integration_id, "project": PROJECT, "environment": "emulator", "frequency": 60,
            "start": hours_ago(3).isoformat(), "objects": OBJECTS, **settings}


def build_config(*integrations: dict[str, Any]) -> SyncConfig:
    text = yaml.safe_dump({"projects": [PROJECT], "integrations": list(integrations)}, sort_keys=False)
    return parse_config(text, source_name="operations-test.yaml")


def range_tags(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def run_job(defs: dg.Definitions, job_name: str, instance: dg.DagsterInstance,
            tags: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:
    """One in-process run of a job of `defs` on `instance`; failures are returned, not raised."""
    job = defs.resolve_job_def(job_name)
    return job.execute_in_process(instance=instance, tags=tags, raise_on_error=False, run_config=QUIET_RUN)


def check_evaluations(result: dg.ExecuteInProcessResult, check: str) -> dict[str, dg.AssetCheckEvaluation]:
    """One check's evaluations in a run, by object."""
    return {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations() if e.check_name == check}
