"""Randomized rounds against an emulated org: creates, updates, updates that leave or re-enter the sync
rules, deletes, hard deletes, opt-out flips, renamed parents, late commits and mapping or rule changes,
each round synced by another launcher (the plain pipeline, a Dagster job in process, the CLI in a
subprocess, sometimes SIGKILLed mid-run, or a CLI and a Dagster job at once), then the store's live rows compared with the org field by field.

The org's clock runs hours behind the wall clock so every window a launcher syncs is complete. Longer runs:
SALESFORCE_SYNC_RANDOM_SEED=<n> SALESFORCE_SYNC_RANDOM_ROUNDS=<n> pytest -k randomized; a failure names both.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from simple_salesforce import Salesforce

from salesforce_sync.commands.sync import QUIET, local_instance
from salesforce_sync.config.models import SyncConfig
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG
from salesforce_sync.dagster_defs.definitions import build_definitions, sync_job_name
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.window import SyncWindow
from salesforce_sync.store import AudienceStore, SyncEvent
from salesforce_sync_tests.pipeline.support import (
    AUTH_ENV,
    HOUR,
    IDENTITY_PATHS,
    MAPPINGS,
    hour_floor,
    https_integration,
    load_config,
    set_auth_env,
    sync_window,
)

SEED = int(os.environ.get("SALESFORCE_SYNC_RANDOM_SEED", "20261202"))
ROUNDS = int(os.environ.get("SALESFORCE_SYNC_RANDOM_ROUNDS", "5"))
PROJECT, INTEGRATION = "acme", "crm"
OBJECTS = ("Lead", "Contact", "CampaignMember")
LAUNCHERS = ("pipeline", "dagster", "cli", "cli_killed", "concurrent")
STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Not Converted")
CLOSED = "Closed - Not Converted"
INDUSTRY = {"field": "Industry", "property": "industry", "type": "string"}
DEPARTMENT = {"field": "Department", "property": "department", "type": "string"}
#: Per object: the Salesforce paths each store column or property reads, as the oracle converts them by hand.
PERSON_PATHS = {"email": "Email", "first_name": "FirstName", "last_name": "LastName", "phone": "Phone"}


@dataclass
class Settings:
    """The integration's variable settings: optional extra mappings and the Lead status rule."""

    lead_industry: bool = False
    contact_department: bool = False
    lead_status_rule: bool = True

    def objects(self) -> dict[str, Any]:
        lead_rules = [{"field": "Email", "operator": "is_set"}]
        if self.lead_status_rule:
            lead_rules.append({"field": "Status", "operator": "not_equals", "value": CLOSED})
        return {
            "Lead": {"sync_rules": {"match": "all", "rules": lead_rules},
                     "field_mappings": MAPPINGS["Lead"] + ([INDUSTRY] if self.lead_industry else [])},
            "Contact": {"sync_rules": {"rules": []},
                        "field_mappings": MAPPINGS["Contact"] + ([DEPARTMENT] if self.contact_department else [])},
            "CampaignMember": {"sync_rules": {"match": "any", "rules": [
                {"field": "Status", "operator": "equals", "value": "Responded"},
                {"field": "Email", "operator": "is_set"}]}, "field_mappings": MAPPINGS["CampaignMember"]},
        }

    def rules_soql(self, object_type: str) -> str | None:
        """The same rules, written by hand for the oracle."""
        if object_type == "Lead":
            return "Email != null" + (f" AND Status != '{CLOSED}'" if self.lead_status_rule else "")
        return "Status = 'Responded' OR Email != null" if object_type == "CampaignMember" else None

    def mappings(self, object_type: str) -> list[dict[str, str]]:
        return self.objects()[object_type]["field_mappings"]


@dataclass
class Round:
    """The org-time hour a round's changes happen in, and the rounds' shared random source."""

    rng: random.Random
    org: EmulatedOrg
    sf: Salesforce
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    changes: list[str] = field(default_factory=list)

    def ids(self, soql: str) -> list[str]:
        return [record["Id"] for record in self.sf.query_all(soql)["records"]]

    def pick(self, soql: str) -> str | None:
        found = self.ids(soql)
        return self.rng.choice(found) if found else None


def build_org(sf: Salesforce, rng: random.Random) -> None:
    """A small org written through the API at the (already rewound) org clock: Accounts, Campaigns, Leads,
    Contacts and CampaignMembers with every kind of value the mappings read."""
    accounts = [sf.Account.create({"Name": f"Account {n}"})["id"] for n in range(4)]
    campaigns = [sf.Campaign.create({"Name": f"Campaign {n}"})["id"] for n in range(3)]
    leads = [sf.Lead.create(lead_values(rng, n))["id"] for n in range(24)]
    contacts = [sf.Contact.create({**contact_values(rng, n), "AccountId": rng.choice(accounts + [None])})["id"]
                for n in range(16)]
    for person in rng.sample(leads, 8) + rng.sample(contacts, 6):
        key = "LeadId" if person in leads else "ContactId"
        sf.CampaignMember.create({"CampaignId": rng.choice(campaigns), key: person,
                                  "Status": rng.choice(["Sent", "Responded"])})


def lead_values(rng: random.Random, n: int) -> dict[str, Any]:
    return {"LastName": f"Lead{n}", "FirstName": rng.choice(["Ada", "Grace", None]), "Company": f"Co {n}",
            "Email": rng.choice([f"lead{n}@example.org", f"lead{n}@example.org", None]),
            "Status": rng.choice(STATUSES), "Phone": rng.choice(["+1 555 0100", None]),
            "Lead_Score__c": rng.choice([None, rng.randint(0, 100)]),
            "Interests__c": rng.choice([None, "CRM", "Email;Events"]),
            "Industry": rng.choice([None, "Banking", "Retail"]), "HasOptedOutOfEmail": rng.random() < 0.2}


def contact_values(rng: random.Random, n: int) -> dict[str, Any]:
    return {"LastName": f"Contact{n}", "FirstName": rng.choice(["Alan", "Edsger", None]),
            "Email": rng.choice([f"contact{n}@example.org", None]), "Phone": rng.choice(["+44 20 7946 0000", None]),
            "Birthdate": rng.choice([None, "1980-02-29", "1999-12-31"]),
            "Lifetime_Value__c": rng.choice([None, 1234.5, 0]), "Department": rng.choice([None, "Sales", "R&D"]),
            "HasOptedOutOfEmail": rng.random() < 0.2}


def random_change(step: Round, serial: int) -> None:
    """One random change to the org; what it was is kept in step.changes for the failure message."""
    rng, sf = step.rng, step.sf
    kind = rng.choice(["create_lead", "create_contact", "create_member", "update_lead", "update_contact",
                       "leave_rules", "enter_rules", "delete", "hard_delete", "remove_member", "opt_out",
                       "rename_account", "rename_campaign", "late_commit"])
    live_lead = "SELECT Id FROM Lead WHERE IsConverted = false"
    live_contact = "SELECT Id FROM Contact WHERE IsDeleted = false"
    if kind == "create_lead":
        sf.Lead.create(lead_values(rng, 1000 + serial))
    elif kind == "create_contact":
        account = step.pick("SELECT Id FROM Account")
        sf.Contact.create({**contact_values(rng, 1000 + serial), "AccountId": account})
    elif kind == "create_member":
        person_type = rng.choice(["Lead", "Contact"])
        person = step.pick(f"SELECT Id FROM {person_type} WHERE Id NOT IN "
                           f"(SELECT {person_type}Id FROM CampaignMember)" +
                           (" AND IsConverted = false" if person_type == "Lead" else ""))
        campaign = step.pick("SELECT Id FROM Campaign")
        if person and campaign:
            sf.CampaignMember.create({"CampaignId": campaign, f"{person_type}Id": person,
                                      "Status": rng.choice(["Sent", "Responded"])})
    elif kind == "update_lead" and (lead := step.pick(live_lead)):
        sf.Lead.update(lead, rng.choice([{"FirstName": f"Renamed{serial}"}, {"Lead_Score__c": serial},
                                         {"Company": f"NewCo {serial}"}, {"Industry": rng.choice(["Retail", None])},
                                         {"Phone": None}, {"Interests__c": "Mobile;CRM"}]))
    elif kind == "update_contact" and (contact := step.pick(live_contact)):
        sf.Contact.update(contact, rng.choice([{"FirstName": f"Renamed{serial}"}, {"Birthdate": "2001-01-01"},
                                               {"Lifetime_Value__c": serial * 1.5}, {"Department": "Ops"},
                                               {"AccountId": step.pick("SELECT Id FROM Account")}]))
    elif kind == "leave_rules" and (lead := step.pick(live_lead + " AND Email != null")):
        sf.Lead.update(lead, rng.choice([{"Email": None}, {"Status": CLOSED}]))
        person = step.pick(live_contact + " AND Email != null")
        if person:
            sf.Contact.update(person, {"Email": None})  # its CampaignMembers may leave their rules
    elif kind == "enter_rules" and (lead := step.pick(live_lead + " AND (Email = null OR Status = "
                                                       f"'{CLOSED}')")):
        sf.Lead.update(lead, {"Email": f"back{serial}@example.org", "Status": "Working - Contacted"})
    elif kind == "delete" and (victim := step.pick(rng.choice([live_lead, live_contact]))):
        (sf.Lead if victim.startswith("00Q") else sf.Contact).delete(victim)
    elif kind == "hard_delete":
        # Leads outside campaigns only: the emulator's hard delete leaves a Lead's CampaignMembers behind.
        lead = step.pick(live_lead + " AND Id NOT IN (SELECT LeadId FROM CampaignMember)")
        if lead:
            step.org.control.hard_delete("Lead", [lead])
    elif kind == "remove_member" and (member := step.pick("SELECT Id FROM CampaignMember")):
        rng.choice([lambda: sf.CampaignMember.delete(member),
                    lambda: step.org.control.hard_delete("CampaignMember", [member])])()
    elif kind == "opt_out" and (person := step.pick(rng.choice([live_lead, live_contact]))):
        current = sf.query(f"SELECT HasOptedOutOfEmail FROM {'Lead' if person.startswith('00Q') else 'Contact'} "
                           f"WHERE Id = '{person}'")["records"][0]["HasOptedOutOfEmail"]
        (sf.Lead if person.startswith("00Q") else sf.Contact).update(person, {"HasOptedOutOfEmail": not current})
    elif kind == "rename_account" and (account := step.pick("SELECT Id FROM Account")):
        sf.Account.update(account, {"Name": f"Account renamed {serial}"})
    elif kind == "rename_campaign" and (campaign := step.pick("SELECT Id FROM Campaign")):
        sf.Campaign.update(campaign, {"Name": f"Campaign renamed {serial}"})
    elif kind == "late_commit":
        # A long transaction stamped a few minutes ago becomes visible only now; only records not modified
        # since then, as Salesforce's row locks would have it.
        stamp = step.now - timedelta(minutes=rng.randint(1, 4))
        target = step.pick(f"{live_lead} AND LastModifiedDate < {stamp.strftime('%Y-%m-%dT%H:%M:%SZ')}")
        if target and rng.random() < 0.5:
            step.org.control.late_commit("Lead", stamp, {"FirstName": f"Late{serial}"}, record_id=target)
        else:
            step.org.control.late_commit("Lead", stamp, lead_values(rng, 2000 + serial))
    else:
        kind += " (nothing to change)"
    step.changes.append(kind)


def change_settings(rng: random.Random, settings: Settings) -> str:
    choice = rng.choice(["lead_industry", "contact_department", "lead_status_rule"])
    setattr(settings, choice, not getattr(settings, choice))
    return f"settings: {choice} -> {getattr(settings, choice)}"


# ---- the oracle -------------------------------------------------------------------------------------------


def expected_live_rows(sf: Salesforce, settings: Settings, object_type: str) -> dict[str, dict[str, Any]]:
    """The live rows the store should hold: the org's records that exist and match the rules, mapped by hand."""
    mappings = settings.mappings(object_type)
    identity = IDENTITY_PATHS[object_type]
    paths = ["Id", "LastModifiedDate", *PERSON_PATHS.values(), *(m["field"] for m in mappings), *identity.values()]
    if object_type == "CampaignMember":
        paths += ["Lead.HasOptedOutOfEmail", "Contact.HasOptedOutOfEmail", "Lead.LastModifiedDate",
                  "Contact.LastModifiedDate"]
    else:
        paths.append("HasOptedOutOfEmail")
    rules = settings.rules_soql(object_type)
    soql = f"SELECT {', '.join(dict.fromkeys(paths))} FROM {object_type}" + (f" WHERE {rules}" if rules else "")
    rows = {}
    for record in sf.query_all(soql)["records"]:
        row = {column: record[path] for column, path in PERSON_PATHS.items()}
        stamps = [pd.Timestamp(record["LastModifiedDate"])]
        if object_type == "CampaignMember":
            people = [record[name] for name in ("Lead", "Contact") if record[name]]
            row["unsubscribed"] = people[0]["HasOptedOutOfEmail"]
            stamps += [pd.Timestamp(person["LastModifiedDate"]) for person in people]
        else:
            row["unsubscribed"] = record["HasOptedOutOfEmail"]
        row["properties"] = {m["property"]: by_hand(value_at(record, m["field"]), m["type"]) for m in mappings}
        row["properties"].update({name: record[path] for name, path in identity.items()})
        row["sf_modified_at"] = max(stamps)
        rows[f"sf_{INTEGRATION}_{object_type}_{record['Id']}"] = row
    return rows


def value_at(record: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        record = record[part] if record else None
    return record


def by_hand(value: Any, kind: str) -> Any:
    if value is None:
        return None
    return {"number": float, "array": lambda text: text.split(";")}.get(kind, lambda same: same)(value)


def stored_live_rows(store: AudienceStore, object_type: str) -> dict[str, dict[str, Any]]:
    frame = store.users(PROJECT, INTEGRATION, object_type, include_deleted=False)
    columns = [*PERSON_PATHS, "unsubscribed", "properties", "sf_modified_at"]
    return {record["external_id"]: {name: None if not isinstance(record[name], dict) and pd.isna(record[name])
                                    else record[name] for name in columns}
            for record in frame.to_dict("records")}


def differences(store: AudienceStore, sf: Salesforce, settings: Settings) -> list[str]:
    found = []
    for object_type in OBJECTS:
        stored, expected = stored_live_rows(store, object_type), expected_live_rows(sf, settings, object_type)
        found += [f"{key} live in the store, not in the org" for key in sorted(set(stored) - set(expected))]
        found += [f"{key} missing from the store's live rows" for key in sorted(set(expected) - set(stored))]
        for key in sorted(set(stored) & set(expected)):
            fields = {name: (stored[key][name], value) for name, value in expected[key].items()
                      if stored[key][name] != value}
            if fields:
                found.append(f"{key}: (stored, org) differ: {fields}")
    return found


# ---- launchers ---------------------------------------------------------------------------------------------


@dataclass
class Launch:
    config_file: Path
    environment: dict[str, str]
    store_url: str

    def pipeline(self, config: SyncConfig, window: SyncWindow) -> bool:
        with AudienceStore(self.store_url) as store:
            sync_window(store, config.integrations[0], window, run_id=f"plain-{time.monotonic_ns()}")
        return True

    def dagster(self, config: SyncConfig, window: SyncWindow) -> bool:
        job = build_definitions(config).resolve_job_def(sync_job_name(INTEGRATION))
        keys = [job.partitions_def.get_partition_key_for_timestamp(moment.timestamp())
                for moment in (window.start, window.end - timedelta(minutes=1))]
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[1],
                INTEGRATION_TAG: INTEGRATION}
        result = job.execute_in_process(instance=local_instance(), tags=tags, raise_on_error=False, run_config=QUIET)
        assert result.success, f"the Dagster run {result.run_id} failed"
        return True

    def concurrent(self, config: SyncConfig, window: SyncWindow, *, full: bool) -> bool:
        """A CLI sync and a Dagster run of the integration at the same time: its lease makes one wait for the
        other, and both succeed."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            command_line = pool.submit(self.cli, full, None)
            return self.dagster(config, window) and command_line.result()

    def cli(self, full: bool, kill_after: float | None) -> bool:
        """`salesforce-sync sync` in a subprocess; with kill_after, SIGKILLed that many seconds after its
        first object started syncing (if still running). Returns whether it completed."""
        command = [sys.executable, "-m", "salesforce_sync.cli", "sync", INTEGRATION] + (["--full"] if full else [])
        with AudienceStore(self.store_url) as store:
            started_before = len(store.sync_log(INTEGRATION, event=SyncEvent.SYNC_STARTED, limit=100_000))
            process = subprocess.Popen(command, env=self.environment, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT)
            try:
                if kill_after is not None:
                    deadline = time.monotonic() + 120
                    while (process.poll() is None and time.monotonic() < deadline and started_before == len(
                            store.sync_log(INTEGRATION, event=SyncEvent.SYNC_STARTED, limit=100_000))):
                        time.sleep(0.05)
                output, _ = process.communicate(timeout=kill_after if kill_after is not None else 180)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.communicate()
                return False
        assert process.returncode == 0, f"the CLI sync failed:\n{output.decode()}"
        return True


@pytest.mark.slow
def test_random_rounds_leave_the_store_equal_to_the_org(
        emulated_org_factory: Callable[..., EmulatedOrg], store_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(SEED)
    org = emulated_org_factory(seed=SEED % 1000, counts={name: 0 for name in OBJECTS})
    set_auth_env(monkeypatch, org)
    # Rounds happen in whole org-time hours, all complete by the wall clock (which Dagster's partitions follow).
    start = hour_floor(datetime.now(UTC)) - (ROUNDS + 3) * HOUR
    org.control.set_clock(start + timedelta(minutes=1), freeze=True)
    org.control.update_settings(access_token_seconds=(ROUNDS + 4) * 3600)  # the test's own session spans the rounds
    sf = org.simple_salesforce()
    build_org(sf, rng)

    settings = Settings()
    config_file = tmp_path / "integrations.yaml"
    info = org.connection_info()
    environment = {**{name: value for name, value in os.environ.items() if name != "DAGSTER_HOME"},
                   "SALESFORCE_SYNC_CONFIG": str(config_file), "SALESFORCE_SYNC_HOME": str(tmp_path / "home"),
                   "AUDIENCE_STORE_URL": store_url, **{variable: info[key] for key, variable in AUTH_ENV.items()}}
    for name in ("SALESFORCE_SYNC_CONFIG", "SALESFORCE_SYNC_HOME", "AUDIENCE_STORE_URL"):
        monkeypatch.setenv(name, environment[name])
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    launch = Launch(config_file, environment, store_url)

    def configure() -> SyncConfig:
        integration = https_integration(org, INTEGRATION, PROJECT, start, objects=settings.objects(),
                                        reconcile_every_hours=0, chunk_size=100)
        config_file.write_text(yaml.safe_dump({"projects": [PROJECT], "integrations": [integration]}))
        return load_config(integration)

    launchers = list(LAUNCHERS) + [rng.choice(LAUNCHERS) for _ in range(max(0, ROUNDS - len(LAUNCHERS)))]
    rng.shuffle(launchers)
    history: list[str] = []
    try:
        launch.pipeline(configure(), SyncWindow(start, start + HOUR, first=True))
        history.append("round 0: first sync through the pipeline")
        assert not (found := differences(AudienceStore(store_url), sf, settings)), found
        pending_since: datetime | None = None
        for number, launcher in enumerate(launchers[:ROUNDS], start=1):
            hour = start + number * HOUR
            step = Round(rng, org, sf, now=hour + timedelta(minutes=rng.randint(6, 50)))
            org.control.set_clock(step.now, freeze=True)
            for serial in range(rng.randint(3, 8)):
                random_change(step, number * 100 + serial)
            if rng.random() < 0.3:
                step.changes.append(change_settings(rng, settings))
            config = configure()
            # The sync starts a minute after the changes: a window whose end the org has not reached yet is read
            # up to the org's present second, which would leave out what was stamped in that very second.
            org.control.set_clock(step.now + timedelta(minutes=1), freeze=True)
            pending_since = min(pending_since or hour, hour)
            window = SyncWindow(hour_floor(pending_since), hour + HOUR)
            history.append(f"round {number} at {step.now:%H:%M} via {launcher}: {', '.join(step.changes)}")
            if launcher == "pipeline":
                completed = launch.pipeline(config, window)
            elif launcher == "dagster":
                completed = launch.dagster(config, window)
            elif launcher == "concurrent":
                completed = launch.concurrent(config, window, full=rng.random() < 0.5)
            else:
                with AudienceStore(store_url) as store:
                    ends = [store.get_state(INTEGRATION, name) for name in OBJECTS]
                up_to_date = all(state and state.last_success_window_end >= hour_floor(datetime.now(UTC))
                                 for state in ends)
                completed = launch.cli(full=up_to_date or rng.random() < 0.3,
                                       kill_after=rng.uniform(0.0, 1.5) if launcher == "cli_killed" else None)
            history[-1] += "" if completed else " (killed)"
            if completed:
                pending_since = None
                with AudienceStore(store_url) as store:
                    assert not (found := differences(store, sf, settings)), "\n".join(found)
        if pending_since is not None:  # the last round was killed: the next sync repairs it
            launch.pipeline(configure(), SyncWindow(hour_floor(pending_since), start + (ROUNDS + 1) * HOUR))
            history.append("final: pipeline after the kill")
            with AudienceStore(store_url) as store:
                assert not (found := differences(store, sf, settings)), "\n".join(found)
    except Exception as error:
        raise AssertionError(f"randomized sync failed with SALESFORCE_SYNC_RANDOM_SEED={SEED} "
                             f"SALESFORCE_SYNC_RANDOM_ROUNDS={ROUNDS}; rounds so far:\n" + "\n".join(history)
                             + f"\n{type(error).__name__}: {error}") from error
