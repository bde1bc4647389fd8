"""Shared pieces of the pipeline tests: integration configs as YAML text, a window synced through the
production path (login over HTTPS, preflight, plan, apply), and an oracle that reads the org directly
with simple-salesforce and converts its records by hand, independently of the sync's mapping code."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from simple_salesforce import Salesforce

from salesforce_sync.config.loader import parse_config
from salesforce_sync.config.models import IntegrationConfig, SyncConfig
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.health import preflight
from salesforce_sync.runs.window import SyncWindow, WindowResult, apply_window, check_settings, plan_window
from salesforce_sync.runs.connection import connect
from salesforce_sync.store import AudienceStore

HOUR = timedelta(hours=1)
OBJECTS = ("Lead", "Contact", "CampaignMember")
AUTH_ENV = {"client_id": "PIPELINE_SF_CLIENT_ID", "client_secret": "PIPELINE_SF_CLIENT_SECRET",
            "refresh_token": "PIPELINE_SF_REFRESH_TOKEN"}
AUTH = {"method": "refresh_token", "client_id_env": AUTH_ENV["client_id"],
        "client_secret_env": AUTH_ENV["client_secret"], "refresh_token_env": AUTH_ENV["refresh_token"]}

MAPPINGS: dict[str, list[dict[str, str]]] = {
    "Lead": [{"field": "Company", "property": "company", "type": "string"},
             {"field": "Lead_Score__c", "property": "lead_score", "type": "number"},
             {"field": "Interests__c", "property": "interests", "type": "array"}],
    "Contact": [{"field": "Account.Name", "property": "company", "type": "string"},
                {"field": "Birthdate", "property": "birthdate", "type": "date"},
                {"field": "Lifetime_Value__c", "property": "lifetime_value", "type": "number"}],
    "CampaignMember": [{"field": "Campaign.Name", "property": "campaign", "type": "string"},
                       {"field": "Status", "property": "campaign_status", "type": "string"}],
}
RULES: dict[str, dict[str, Any]] = {
    "Lead": {"match": "all", "rules": [{"field": "Email", "operator": "is_set"},
                                       {"field": "Status", "operator": "not_equals",
                                        "value": "Closed - Not Converted"}]},
    "Contact": {"rules": []},
    "CampaignMember": {"match": "any", "rules": [{"field": "Status", "operator": "equals", "value": "Responded"},
                                                 {"field": "Email", "operator": "is_set"}]},
}
LEADS_ONLY: dict[str, Any] = {"Lead": {"sync_rules": {"rules": []}, "field_mappings": MAPPINGS["Lead"]}}
"""Leads alone, every one of them, with MAPPINGS: the smallest integration worth syncing."""
#: The same rules written as SOQL by hand, for the oracle.
RULES_SOQL = {"Lead": "Email != null AND Status != 'Closed - Not Converted'", "Contact": None,
              "CampaignMember": "Status = 'Responded' OR Email != null"}
#: The references (identity, and a Contact's Account) every object's rows carry in `properties` (property: field),
#: whatever the mappings.
IDENTITY_PATHS: dict[str, dict[str, str]] = {
    "Lead": {"converted_contact_id": "ConvertedContactId", "is_converted": "IsConverted"},
    "Contact": {"account_id": "AccountId"},
    "CampaignMember": {"lead_id": "LeadId", "contact_id": "ContactId"},
}
#: What the oracle selects: the default person fields plus the mapped paths of MAPPINGS.
ORACLE_FIELDS = {
    "Lead": "Id, IsDeleted, LastModifiedDate, Email, FirstName, LastName, Phone, HasOptedOutOfEmail, Company, "
            "Lead_Score__c, Interests__c, ConvertedContactId, IsConverted",
    "Contact": "Id, IsDeleted, LastModifiedDate, Email, FirstName, LastName, Phone, HasOptedOutOfEmail, "
               "Account.Name, Birthdate, Lifetime_Value__c, AccountId",
    "CampaignMember": "Id, IsDeleted, LastModifiedDate, Email, FirstName, LastName, Phone, Lead.HasOptedOutOfEmail, "
                      "Contact.HasOptedOutOfEmail, Lead.LastModifiedDate, Contact.LastModifiedDate, Campaign.Name, "
                      "Status, LeadId, ContactId",
}


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def set_auth_env(monkeypatch: pytest.MonkeyPatch, org: EmulatedOrg) -> None:
    """The refresh-token login an https:// integration reads from the environment, as in production."""
    info = org.connection_info()
    for key, variable in AUTH_ENV.items():
        monkeypatch.setenv(variable, info[key])


def objects_config(**overrides: dict[str, Any]) -> dict[str, Any]:
    """All three objects with RULES and MAPPINGS; an override replaces one object's settings."""
    objects = {name: {"sync_rules": RULES[name], "field_mappings": MAPPINGS[name]} for name in OBJECTS}
    objects.update(overrides)
    return objects


def https_integration(org: EmulatedOrg, integration_id: str, project: str, start: datetime,
                      **settings: Any) -> dict[str, Any]:
    """An integration logging in to a running emulated org through its HTTPS URL and CA bundle."""
    return {"id": integration_id, "project": project, "environment": org.base_url, "ca_file": org.ca_file,
            "auth": AUTH, "start": start.isoformat(), "frequency": 60, "overlap_minutes": 10,
            "objects": objects_config(), **settings}


def cli_setup(org: EmulatedOrg, store_url: str, folder: Path, start: datetime,
              **settings: Any) -> tuple[Path, dict[str, str]]:
    """The config file of a Lead-only integration `crm` (project acme) in `folder`, and the environment a
    `salesforce-sync` process syncs it with: the org's login, the store, no DAGSTER_HOME."""
    integration = https_integration(org, "crm", "acme", start, objects=LEADS_ONLY, **settings)
    config_file = folder / "integrations.yaml"
    config_file.write_text(yaml.safe_dump({"projects": ["acme"], "integrations": [integration]}))
    info = org.connection_info()
    environment = {**{name: value for name, value in os.environ.items() if name != "DAGSTER_HOME"},
                   "SALESFORCE_SYNC_CONFIG": str(config_file), "AUDIENCE_STORE_URL": store_url,
                   **{variable: info[key] for key, variable in AUTH_ENV.items()}}
    return config_file, environment


def load_config(*integrations: dict[str, Any]) -> SyncConfig:
    """Validate YAML text, as the sync reads its file."""
    projects = sorted({integration["project"] for integration in integrations})
    text = yaml.safe_dump({"projects": projects, "integrations": list(integrations)}, sort_keys=False)
    return parse_config(text, source_name="integrations.yaml")


def sync_window(store: AudienceStore, integration: IntegrationConfig, window: SyncWindow,
                run_id: str = "test-run") -> dict[str, WindowResult]:
    """Every object of the integration for one window, the way the Dagster asset and IO manager do it."""
    results = {}
    with connect(integration) as client:
        for object_type in integration.object_types:
            describes = preflight(client, integration, object_type)
            checked = check_settings(store, integration, object_type, window, run_id=run_id)
            sync = plan_window(client, integration, object_type, checked, describes)
            results[object_type] = apply_window(store, sync, run_id=run_id)
    return results


def counts_of(results: dict[str, WindowResult]) -> dict[str, tuple[int, int, int]]:
    """(imported, updated, deleted) per object."""
    return {name: (r.counts.imported, r.counts.updated, r.counts.deleted) for name, r in results.items()}


def soql_datetime(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def oracle_rows(sf: Salesforce, integration_id: str, object_type: str, end: datetime,
                rules_soql: str | None = None) -> dict[str, dict[str, Any]]:
    """The store rows the org's matching records (LastModifiedDate before `end`) should become."""
    rules = RULES_SOQL[object_type] if rules_soql is None else rules_soql
    soql = (f"SELECT {ORACLE_FIELDS[object_type]} FROM {object_type} "
            f"WHERE LastModifiedDate < {soql_datetime(end)}" + (f" AND ({rules})" if rules else ""))
    records = sf.query_all(soql, include_deleted=True)["records"]
    return {f"sf_{integration_id}_{object_type}_{record['Id']}": _expected_row(object_type, record)
            for record in records}


def _expected_row(object_type: str, record: dict[str, Any]) -> dict[str, Any]:
    row = {"salesforce_id": record["Id"], "email": record["Email"], "first_name": record["FirstName"],
           "last_name": record["LastName"], "phone": record["Phone"], "deleted": record["IsDeleted"]}
    modified = [pd.Timestamp(record["LastModifiedDate"])]
    if object_type == "CampaignMember":
        people = [record[name] for name in ("Lead", "Contact") if record[name]]
        row["unsubscribed"] = people[0]["HasOptedOutOfEmail"]
        # The row also changes when its Lead or Contact does: its version is the newest of the three.
        modified += [pd.Timestamp(person["LastModifiedDate"]) for person in people]
        row["properties"] = {"campaign": record["Campaign"]["Name"], "campaign_status": record["Status"]}
    else:
        row["unsubscribed"] = record["HasOptedOutOfEmail"]
    if object_type == "Lead":
        interests = record["Interests__c"]
        row["properties"] = {"company": record["Company"], "lead_score": record["Lead_Score__c"],
                             "interests": interests.split(";") if interests else None}
    if object_type == "Contact":
        account = record["Account"]
        row["properties"] = {"company": account["Name"] if account else None, "birthdate": record["Birthdate"],
                             "lifetime_value": record["Lifetime_Value__c"]}
    row["properties"].update({name: record[path] for name, path in IDENTITY_PATHS[object_type].items()})
    row["sf_modified_at"] = max(modified)
    return row


def stored_rows(store: AudienceStore, project: str, integration_id: str, object_type: str,
                *, with_sync_times: bool = False) -> dict[str, dict[str, Any]]:
    """The store's rows of one object, in the oracle's form (and optionally their sync timestamps)."""
    frame = store.users(project, integration_id, object_type)
    columns = ["salesforce_id", "email", "first_name", "last_name", "phone", "deleted", "unsubscribed",
               "properties", "sf_modified_at"]
    if with_sync_times:
        columns += ["first_synced_at", "last_synced_at", "deleted_at"]
    rows = {}
    for record in frame.to_dict("records"):
        rows[record["external_id"]] = {name: _plain(record[name]) for name in columns}
    return rows


def _plain(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return value
    return None if pd.isna(value) else value


def assert_same_rows(stored: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    """Same keys, and every field of every row equal, with the first difference named."""
    assert sorted(stored) == sorted(expected)
    for key, row in expected.items():
        differences = {name: (stored[key][name], value) for name, value in row.items() if stored[key][name] != value}
        assert not differences, f"{key}: (stored, expected) differ: {differences}"


def lead_integration(org: EmulatedOrg, integration_id: str, project: str, start: datetime,
                     **settings: Any) -> IntegrationConfig:
    """An integration of Leads only (RULES and MAPPINGS) in 100-record chunks: a window spans several pages."""
    objects = {"Lead": objects_config()["Lead"]}
    return load_config(https_integration(org, integration_id, project, start, objects=objects, chunk_size=100,
                                         **settings)).integrations[0]
