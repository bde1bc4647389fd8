"""The sync through Dagster, as `salesforce-sync sync` runs it: one in-process run over a range of windows,
its metadata, a full re-sync's scrub of hard deletes, the one-project-per-org rule, definitions loading.
Dagster runs cost seconds each, so only what is about Dagster is checked here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from salesforce_sync.commands.sync import QUIET, local_instance, run_sync
from salesforce_sync.config.errors import ConfigError
from salesforce_sync.config.models import SyncConfig
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, asset_key
from salesforce_sync.dagster_defs.definitions import build_definitions, sync_job_name
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore, IntegrationStatus, SyncEvent
from salesforce_sync_tests.pipeline.support import (
    HOUR,
    OBJECTS,
    assert_same_rows,
    hour_floor,
    https_integration,
    load_config,
    oracle_rows,
    set_auth_env,
    stored_rows,
)

PROJECT = "acme"
ORG_COUNTS = {"Lead": 300, "Contact": 150, "CampaignMember": 80}
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
WINDOW_COUNTS = ("records_imported", "records_updated", "records_deleted", "records_skipped")


@pytest.fixture
def org(emulated_org_factory: Callable[..., EmulatedOrg], monkeypatch: pytest.MonkeyPatch) -> EmulatedOrg:
    org = emulated_org_factory(seed=5, counts=ORG_COUNTS)
    set_auth_env(monkeypatch, org)
    return org


@pytest.fixture
def start() -> datetime:
    """Two complete hourly windows exist by the wall clock, which is what Dagster's partitions follow."""
    return hour_floor(datetime.now(UTC)) - 2 * HOUR


def partition_keys(config: SyncConfig, integration_id: str) -> tuple[str, str]:
    partitions = build_definitions(config).resolve_job_def(sync_job_name(integration_id)).partitions_def
    return partitions.get_first_partition_key(), partitions.get_last_partition_key()


def materializations(instance: dg.DagsterInstance, integration_id: str, run_id: str) -> dict[str, dict[str, dict]]:
    """Metadata of each object's materializations in one run, by object and partition (in partition order)."""
    found = {}
    for object_type in OBJECTS:
        records = instance.fetch_materializations(asset_key(integration_id, object_type), limit=100).records
        found[object_type] = {record.partition_key: record.asset_materialization.metadata
                              for record in sorted(records, key=lambda r: r.partition_key) if record.run_id == run_id}
    return found


@pytest.mark.slow
def test_a_backfill_is_one_run_with_one_query_per_object_and_a_full_resync_scrubs_hard_deletes(
        org: EmulatedOrg, store: AudienceStore, start: datetime) -> None:
    config = load_config(https_integration(org, "crm", PROJECT, start, bulk_threshold=100))
    sf = org.simple_salesforce()
    org.control.reset_api_calls()

    assert run_sync(config, ["crm"], full=False) == 0

    instance = local_instance()
    (run,) = instance.get_runs()
    first_key, last_key = partition_keys(config, "crm")
    assert first_key != last_key
    assert (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]) == (
        first_key, last_key)
    calls = org.control.api_calls()["by_endpoint"]
    # Lead and Contact exceed bulk_threshold: one Bulk job each; CampaignMember is read by one REST query.
    # Every object also costs one COUNT() query, and nothing needed a second page.
    assert calls["bulk2.query.create"] == 2
    assert calls["query"] == len(OBJECTS) + 1 and "queryMore" not in calls
    metadata = materializations(instance, "crm", run.run_id)
    live = store.user_counts().set_index("object_type")["live"]
    for object_type, by_window in metadata.items():
        assert list(by_window) == [first_key, last_key]  # one materialization per window of the range, one write
        run_meta = by_window[last_key]  # what only the run as a whole has, once, on its last window
        assert all(isinstance(meta[name], dg.IntMetadataValue) for meta in by_window.values() for name in WINDOW_COUNTS)
        assert "api_calls" not in by_window[first_key] and "soql" not in by_window[first_key]
        assert isinstance(run_meta["duration_seconds"], dg.FloatMetadataValue)
        assert isinstance(run_meta["range_start"], dg.TimestampMetadataValue)
        assert run_meta["range_start"].value == start.timestamp()
        assert run_meta["range_end"].value == (start + 2 * HOUR).timestamp()
        assert run_meta["api"].value == ("rest" if object_type == "CampaignMember" else "bulk_2.0")
        assert run_meta["api_calls"].value > 0
        assert run_meta["dagster/row_count"].value == live[object_type]
        expected = oracle_rows(sf, "crm", object_type, FAR_FUTURE)
        # Each window counts the records whose LastModifiedDate lies in it; the history before the range counts
        # in the first window.
        in_last = {key: row["sf_modified_at"] >= start + HOUR for key, row in expected.items()}
        for key, last in ((first_key, False), (last_key, True)):
            rows = [row for name, row in expected.items() if in_last[name] == last]
            deleted = sum(row["deleted"] for row in rows)
            assert (by_window[key]["records_imported"].value, by_window[key]["records_updated"].value,
                    by_window[key]["records_deleted"].value) == (len(rows) - deleted, 0, deleted), (object_type, key)
        assert sum(meta["records_imported"].value for meta in by_window.values()) == run_meta["run_records_imported"].value
        assert_same_rows(stored_rows(store, PROJECT, "crm", object_type), expected)
    messages = [record.user_message for record in instance.all_logs(run.run_id)]
    leads_read = len(oracle_rows(sf, "crm", "Lead", FAR_FUTURE))  # in one chunk: progress says all of them
    assert any(message.startswith(f"Lead: {leads_read:,} / {leads_read:,} records (100%), ") and
               message.endswith(" records/s") for message in messages)
    assert {name for name in OBJECTS for message in messages if message.startswith(f"{name}: ")
            and message.endswith(" records/s")} == set(OBJECTS)  # every object reports its chunks

    # Hard deletes never show in queryAll; a full re-sync finds them by what it no longer lists. A Lead
    # edited after the last complete window is listed too, so it is updated, not mistaken for deleted.
    gone_leads = [r["Id"] for r in sf.query("SELECT Id FROM Lead WHERE Email != null AND IsDeleted = false AND "
                                            "Status = 'Open - Not Contacted' AND Id NOT IN "
                                            "(SELECT LeadId FROM CampaignMember) ORDER BY Id LIMIT 3")["records"]]
    gone_members = [r["Id"] for r in sf.query("SELECT Id FROM CampaignMember ORDER BY Id LIMIT 2")["records"]]
    edited_lead = gone_leads.pop()
    assert org.control.hard_delete("Lead", gone_leads) == 2
    assert org.control.hard_delete("CampaignMember", gone_members) == 2
    sf.Lead.update(edited_lead, {"FirstName": "Edited"})

    assert run_sync(config, ["crm"], full=True) == 0

    full_run = next(r for r in instance.get_runs() if r.run_id != run.run_id)
    assert (full_run.tags["dagster/asset_partition_range_start"],
            full_run.tags["dagster/asset_partition_range_end"]) == (first_key, last_key)
    counts = {name: (events[last_key]["records_imported"].value, events[last_key]["records_updated"].value,
                     events[last_key]["records_deleted"].value, events[last_key]["full_resync"].value)
              for name, events in materializations(instance, "crm", full_run.run_id).items()}
    assert counts == {"Lead": (0, 1, 2, True), "Contact": (0, 0, 0, True), "CampaignMember": (0, 0, 2, True)}
    leads = stored_rows(store, PROJECT, "crm", "Lead")
    members = stored_rows(store, PROJECT, "crm", "CampaignMember")
    assert all(leads[f"sf_crm_Lead_{lead_id}"]["deleted"] for lead_id in gone_leads)
    assert all(members[f"sf_crm_CampaignMember_{member_id}"]["deleted"] for member_id in gone_members)
    assert leads[f"sf_crm_Lead_{edited_lead}"]["first_name"] == "Edited"
    for object_type, stored in (("Lead", leads), ("CampaignMember", members)):
        still_there = {key: row for key, row in stored.items() if row["salesforce_id"] not in gone_leads + gone_members}
        assert_same_rows(still_there, oracle_rows(sf, "crm", object_type, FAR_FUTURE))

    # One window alone (as the sensor runs it) reports its own numbers: it re-reads the records stamped in it,
    # all unchanged since the full re-sync (one is stamped there now, so the window is never empty).
    job = build_definitions(config).resolve_job_def(sync_job_name("crm"))
    last_window = job.partitions_def.time_window_for_partition_key(last_key)
    org.control.set_clock(last_window.start + timedelta(minutes=30), freeze=True)
    sf.Lead.update(edited_lead, {"Title": "Stamped in the last window"})
    org.control.set_clock(datetime.now(UTC))
    assert run_sync(config, ["crm"], full=True) == 0
    single = job.execute_in_process(partition_key=last_key, instance=instance, tags={INTEGRATION_TAG: "crm"},
                                    run_config=QUIET)
    (lead,) = materializations(instance, "crm", single.run_id)["Lead"].values()
    read = lead["run_records_skipped"].value
    assert read > 0 and lead["records_skipped"].value == read and lead["records_imported"].value == 0
    assert lead["dagster/row_count"].value == store.user_counts().set_index("object_type")["live"]["Lead"]


@pytest.mark.slow
def test_a_second_project_connecting_the_same_org_is_refused(
        org: EmulatedOrg, store: AudienceStore, start: datetime, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(https_integration(org, "sales_crm", "sales", start),
                         https_integration(org, "events_crm", "events", start))
    org_id = org.connection_info()["org_id"]
    store.register_org(org_id, "sales", "sales_crm")  # what the first project's sync records (saves a run)

    assert run_sync(config, ["events_crm"], full=False) == 1

    output = capsys.readouterr().err  # the CLI prints a failed step's own error on stderr
    (failure,) = {entry.message for entry in store.sync_log("events_crm", event=SyncEvent.SYNC_FAILED)}
    for text in (failure, output):
        assert org_id[:15] in text and "'sales'" in text and "'sales_crm'" in text and "'events'" in text
    assert store.users("events").empty
    assert [(o.project, o.integration_id) for o in store.orgs()] == [("sales", "sales_crm")]
    for object_type in OBJECTS:
        state = store.get_state("events_crm", object_type)
        assert (state.status, state.last_success_window_end) == (IntegrationStatus.ERROR, None)


def test_definitions_load_and_every_integration_resolves_its_partitioned_job(tmp_path: Path) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    config = load_config(
        {"id": "embedded", "project": "demo", "environment": "emulator", "start": start.isoformat(),
         "frequency": 15, "emulator": {"state_file": str(tmp_path / "org.sqlite")},
         "objects": {"Lead": {"sync_rules": {"rules": []}, "field_mappings": []}}},
        {"id": "remote", "project": "demo", "environment": "acme.my.salesforce.com", "start": start.isoformat(),
         "owners": ["data@acme.example", "team:growth"],
         "auth": {"method": "client_credentials", "client_id_env": "ACME_ID", "client_secret_env": "ACME_SECRET"},
         "objects": {"Contact": {"sync_rules": {"rules": []}, "field_mappings": []},
                     "CampaignMember": {"sync_rules": {"rules": []}, "field_mappings": []}}},
    )

    defs = build_definitions(config)
    dg.Definitions.validate_loadable(defs)

    embedded, remote = defs.resolve_job_def("sync_embedded"), defs.resolve_job_def("sync_remote")
    assert embedded.partitions_def.get_first_partition_key() == "2026-01-01-00:00"
    assert embedded.partitions_def.time_window_for_partition_key("2026-01-01-00:00").end == datetime(
        2026, 1, 1, 0, 15, tzinfo=UTC)
    assert remote.partitions_def.time_window_for_partition_key("2026-01-01-00:00").end == start + HOUR
    assert set(remote.asset_layer.executable_asset_keys) == {asset_key("remote", "Contact"),
                                                              asset_key("remote", "CampaignMember")}
    with pytest.raises(dg.DagsterInvariantViolationError):
        defs.resolve_job_def("sync_unknown")

    # Dagster's standard metadata: the store table, the mapped properties as columns, owners, code references.
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    contact = specs[asset_key("remote", "Contact")]
    assert contact.owners == ["data@acme.example", "team:growth"] and specs[asset_key("embedded", "Lead")].owners == []
    assert contact.metadata["dagster/table_name"] == "audience_users"
    columns = {column.name: column.type for column in contact.metadata["dagster/column_schema"].columns}
    assert columns == {mapping.property: mapping.type for mapping in config.integration("remote").mappings("Contact")}
    (reference,) = contact.metadata["dagster/code_references"].code_references
    assert Path(reference.file_path).read_text().splitlines()[reference.line_number - 1].startswith("def build_object_asset")


def test_an_owner_is_an_email_or_a_team() -> None:
    with pytest.raises(ConfigError, match="'data team' is not an owner"):
        load_config({"id": "crm", "project": "acme", "environment": "emulator", "start": "2026-01-01T00:00:00Z",
                     "owners": ["data team"]})
