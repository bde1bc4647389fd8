"""Activities written back as Tasks and Events against an emulated org over TLS, with the store on SQLite and
PostgreSQL: each type on the right object and person, WhatId only where Salesforce allows it, statuses, bodies,
the switch-on, people found later, rejections with their codes, and exactly once (also after a kill -9)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from simple_salesforce import Salesforce

from salesforce_sync.cli import main
from salesforce_sync.commands.push import format_rejections
from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.people import rebuild_people
from salesforce_sync.store import AudienceStore
from salesforce_sync.sync.activities import PRECHECK_INVALID_ACTIVITY
from salesforce_sync.sync.external_ids import external_id
from salesforce_sync.sync.write_back import PRECHECK_RESTRICTED_PICKLIST
from salesforce_sync_tests.write_back.conftest import lead_source, prospect, push
from salesforce_sync_tests.write_back.test_write_back_cli import configure, store_writes_blocked, wait_for

Source = Callable[[str, list[dict[str, Any]]], None]
Build = Callable[..., IntegrationConfig]
NOW = datetime.now(UTC).replace(microsecond=0)
SINCE = (NOW - timedelta(days=1)).isoformat()


def activity(key: str, kind: str, *, person_id: str | None = None, email: str | None = None,
             occurred: datetime = NOW, **values: Any) -> dict[str, Any]:
    return {"activity_id": key, "person_id": person_id, "email": email, "type": kind,
            "subject": f"{kind} {key}", "body": f"body of {key}", "occurred_at": occurred.isoformat(),
            "status": "done", "minutes": None, "related_to": None, "owner": None, **values}


def activities_source(**settings: Any) -> dict[str, Any]:
    return {"table": "activities", "key": "activity_id", "person_key_column": "person_id", "email_column": "email",
            "description_column": "body", "status_column": "status", "duration_column": "minutes",
            "what_column": "related_to", "include_bodies": True, "since": SINCE, **settings}


def written(sf: Salesforce, object_name: str, key_like: str = "%") -> dict[str, dict[str, Any]]:
    """The org's Tasks or Events by Activity_Key__c, without the ones the emulator seeds (keys `act-...`)."""
    fields = ("Id, WhoId, WhatId, Subject, Description, Activity_Key__c, OwnerId, " +
              ("Status, TaskSubtype, CallDurationInSeconds, ActivityDate" if object_name == "Task"
               else "DurationInMinutes, StartDateTime"))
    records = sf.query_all(f"SELECT {fields} FROM {object_name} WHERE Activity_Key__c LIKE '{key_like}'")["records"]
    return {r["Activity_Key__c"]: r for r in records if not (r["Activity_Key__c"] or "act-").startswith("act-")}


def outcomes(store: AudienceStore) -> dict[str, Any]:
    return {o.source_key: o for o in store.write_back.outcomes("crm", "Activity")}


def test_each_type_lands_as_its_task_or_event_on_its_person_exactly_once(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    contact = sf.query("SELECT Id, Email, AccountId FROM Contact WHERE Email != null AND AccountId != null "
                       "LIMIT 1")["records"][0]
    lead = sf.query("SELECT Id, Email FROM Lead WHERE Email != null AND IsConverted = false "
                    "ORDER BY CreatedDate LIMIT 1")["records"][0]
    account = contact["AccountId"]
    source("prospects", [prospect("p1", "linked.lead@activities.test")])
    source("activities", [
        activity("a1", "call", person_id="p1", minutes=5, related_to=account),   # linked Lead: no WhatId
        activity("a2", "Email", email=contact["Email"].upper(), status="open", related_to=account),
        activity("a3", "visit", email=contact["Email"], minutes=45),
        activity("a4", "meeting", email=lead["Email"], related_to=account),      # Lead by email: no WhatId
        activity("a5", "touchpoint", email="later@activities.test"),             # nobody yet
        activity("a0", "call", person_id="p1", occurred=NOW - timedelta(days=3)),  # before `since`
    ])
    config = integration({"objects": {"Lead": lead_source()}, "activities": activities_source()})

    results = push(store, config)
    assert results["Lead"].counts["created"] == 1
    assert results["Activity"].counts == {"created": 4, "updated": 0, "unchanged": 0, "skipped": 1, "rejected": 0}
    linked_lead = store.write_back.links("crm", "Lead", ["p1"])["p1"]
    tasks, events = written(sf, "Task"), written(sf, "Event")
    assert sorted(tasks) == ["a1", "a2"] and sorted(events) == ["a3", "a4"]
    call = tasks["a1"]
    assert (call["WhoId"], call["WhatId"], call["Status"], call["TaskSubtype"], call["CallDurationInSeconds"]) == (
        linked_lead, None, "Completed", "Call", 300)
    assert call["ActivityDate"] == NOW.date().isoformat() and call["Description"] == "body of a1"
    email = tasks["a2"]
    assert (email["WhoId"], email["WhatId"], email["Status"], email["TaskSubtype"]) == (
        contact["Id"], account, "Not Started", "Email")
    assert (events["a3"]["WhoId"], events["a3"]["DurationInMinutes"]) == (contact["Id"], 45)
    assert (events["a4"]["WhoId"], events["a4"]["WhatId"], events["a4"]["DurationInMinutes"]) == (lead["Id"], None, 30)
    assert outcomes(store)["a5"].message == ("no Lead or Contact found for email 'later@activities.test'; tried "
                                             "again on the next push")
    assert "a0" not in outcomes(store)

    # Unchanged: nothing is sent; the activity whose person was missing is tried again (and found once there).
    again = push(store, config)["Activity"]
    assert again.counts["skipped"] == 1 and again.write_calls == 0
    later = sf.Contact.create({"LastName": "Later", "Email": "later@activities.test"})["id"]
    found = push(store, config)["Activity"]
    assert found.counts["created"] == 1 and written(sf, "Task", "a5")["a5"]["WhoId"] == later

    # A changed activity updates its record (TaskSubtype, set on create only, is not sent again); --full resends
    # every one onto the same records.
    rows = [activity("a1", "call", person_id="p1", minutes=5, status="open", subject="Call back")]
    source("activities", rows)
    changed = push(store, config)["Activity"]
    assert changed.counts["updated"] == 1 and written(sf, "Task", "a1")["a1"]["Status"] == "Not Started"
    assert push(store, config, full=True)["Activity"].counts["updated"] == 1
    assert len(written(sf, "Task")) + len(written(sf, "Event")) == 5


def test_only_activities_after_the_switch_on_are_sent_and_bodies_only_when_asked(
        sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    contact = sf.query("SELECT Id, Email FROM Contact WHERE Email != null LIMIT 1")["records"][0]
    source("activities", [activity("old", "call", email=contact["Email"], occurred=NOW - timedelta(hours=1))])
    config = integration({"activities": activities_source(since=None, include_bodies=False)})
    first = push(store, config)["Activity"]
    assert sum(first.counts.values()) == 0 and not written(sf, "Task")
    switched_on = store.write_back.started_at("crm", "Activity", record=False)
    assert switched_on > NOW - timedelta(minutes=1)

    after = switched_on + timedelta(seconds=1)
    source("activities", [activity("old", "call", email=contact["Email"], occurred=NOW - timedelta(hours=1)),
                          activity("new", "call", email=contact["Email"], occurred=after)])
    assert push(store, config)["Activity"].counts["created"] == 1
    task = written(sf, "Task")["new"]
    assert task["Description"] is None and task["WhoId"] == contact["Id"]
    assert store.write_back.started_at("crm", "Activity", record=True) == switched_on  # kept from the first push


def test_rejections_are_reported_with_their_codes(org: EmulatedOrg, sf: Salesforce, store: AudienceStore,
                                                  source: Source, integration: Build) -> None:
    contact = sf.query("SELECT Id, Email FROM Contact WHERE Email != null LIMIT 1")["records"][0]
    users = sf.query_all("SELECT Id, Email FROM User WHERE IsActive = true ORDER BY Email")["records"]
    leaver = users[1]
    source("prospects", [prospect("gone", "gone@activities.test")])
    lead_config = integration({"objects": {"Lead": lead_source()}})
    push(store, lead_config)
    sf.Lead.delete(store.write_back.links("crm", "Lead", ["gone"])["gone"])  # its link now names a deleted Lead
    org.control.deactivate_user(leaver["Id"])
    source("activities", [
        activity("bad-who", "call", person_id="gone"),
        activity("leaver", "call", email=contact["Email"], owner=leaver["Email"]),
        activity("bad-subtype", "demo", email=contact["Email"]),
        activity("bad-type", "carrier pigeon", email=contact["Email"]),
        activity("fine", "call", email=contact["Email"]),
    ])
    types = {"call": {"object": "Task", "subtype": "Call"}, "demo": {"object": "Task", "subtype": "Demo"}}
    config = integration({"objects": {"Lead": lead_source()},
                          "activities": activities_source(owner_email_column="owner", types=types)})
    result = push(store, config, objects=["Activity"])["Activity"]
    assert result.counts["rejected"] == 4 and result.counts["created"] == 1
    stored = outcomes(store)
    assert (stored["bad-who"].status_code, stored["bad-who"].fields) == ("INVALID_CROSS_REFERENCE_KEY", ("WhoId",))
    assert stored["leaver"].status_code == "INACTIVE_OWNER_OR_USER"
    assert (stored["bad-subtype"].status_code, stored["bad-subtype"].fields) == (PRECHECK_RESTRICTED_PICKLIST,
                                                                                 ("TaskSubtype",))
    assert stored["bad-type"].status_code == PRECHECK_INVALID_ACTIVITY
    assert stored["bad-type"].found_before_sending and not stored["leaver"].found_before_sending

    report = format_rejections(store.write_back.outcomes("crm", "Activity", outcome="rejected"))
    for key, code in (("bad-who", "INVALID_CROSS_REFERENCE_KEY"), ("leaver", "INACTIVE_OWNER_OR_USER"),
                      ("bad-subtype", PRECHECK_RESTRICTED_PICKLIST)):
        assert any(key in line and code in line for line in report.splitlines()), key
    assert sum(push(store, config, objects=["Activity"])["Activity"].counts.values()) == 0  # until they change


def test_a_contact_activity_with_a_what_id_salesforce_refuses_for_a_lead_is_sent_without_it(
        sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    lead = sf.query("SELECT Id, Email FROM Lead WHERE Email != null AND IsConverted = false LIMIT 1")["records"][0]
    contact = sf.query("SELECT Id, Email FROM Contact WHERE Email != null LIMIT 1")["records"][0]
    opportunity = sf.query("SELECT Id FROM Opportunity LIMIT 1")["records"]
    campaign = sf.query("SELECT Id FROM Campaign LIMIT 1")["records"]
    rows = [activity("lead-what", "call", email=lead["Email"], related_to=contact["Id"])]
    if opportunity:
        rows.append(activity("contact-opportunity", "call", email=contact["Email"],
                             related_to=opportunity[0]["Id"]))
    if campaign:  # a Campaign is a WhatId a Task may have, but not one this write-back relates a Contact's to
        rows.append(activity("contact-campaign", "call", email=contact["Email"], related_to=campaign[0]["Id"]))
    source("activities", rows)
    result = push(store, integration({"activities": activities_source()}))["Activity"]
    assert result.counts["created"] == len(rows)
    tasks = written(sf, "Task")
    assert tasks["lead-what"]["WhatId"] is None
    if opportunity:
        assert tasks["contact-opportunity"]["WhatId"] == opportunity[0]["Id"]
    if campaign:
        assert tasks["contact-campaign"]["WhatId"] is None


def test_the_people_identity_finds_the_contact_an_old_address_now_belongs_to(
        sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    # A converted Lead's address belongs to the Contact it became, whose own email differs: only people know.
    contact = sf.query("SELECT Id, Email FROM Contact WHERE Email != null LIMIT 1")["records"][0]
    lead = sf.Lead.create({"LastName": "Converted", "Company": "Old Co", "Email": "old.address@activities.test"})
    store.upsert_users("acme", "crm", pd.DataFrame({
        "external_id": [external_id("crm", "Lead", lead["id"]), external_id("crm", "Contact", contact["Id"])],
        "salesforce_id": [lead["id"], contact["Id"]], "object_type": ["Lead", "Contact"],
        "email": ["old.address@activities.test", contact["Email"]], "first_name": None, "last_name": None,
        "phone": None, "properties": [{"converted_contact_id": contact["Id"], "is_converted": True}, {}],
        "unsubscribed": False, "deleted": False, "sf_modified_at": pd.Timestamp("2026-01-01", tz="UTC")}))
    rebuild_people(store, "acme")
    source("activities", [activity("moved", "call", email="Old.Address@activities.test")])
    result = push(store, integration({"activities": activities_source()}))["Activity"]
    assert result.counts["created"] == 1
    assert written(sf, "Task")["moved"]["WhoId"] == contact["Id"]
    assert outcomes(store)["moved"].salesforce_id.startswith("00T")


@pytest.mark.slow
def test_a_push_of_activities_killed_mid_way_then_rerun_writes_each_exactly_once(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, store_url: str, source: Source, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    chunk = 100
    contact = sf.query("SELECT Id, Email FROM Contact WHERE Email != null LIMIT 1")["records"][0]
    rows = [activity(f"k{n:04d}", "call" if n % 2 else "visit", email=contact["Email"], minutes=10)
            for n in range(5 * chunk)]
    keys = [row["activity_id"] for row in rows]
    source("activities", rows)
    environment = configure(org, store_url, tmp_path, monkeypatch,
                            {"chunk_size": chunk, "activities": activities_source()})
    org.control.add_latency("composite/sobjects", 700)

    def sent() -> int:
        return len(written(sf, "Task", "k%")) + len(written(sf, "Event", "k%"))

    push_process = subprocess.Popen([sys.executable, "-m", "salesforce_sync.cli", "push", "crm", "--object", "Activity"],
                                    env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: sum(store.write_back.outcome_counts("crm", "Activity").values()) == chunk and
                 bool(store.write_back.intents("crm", "Activity", keys)), push_process, "its second chunk")
        with store_writes_blocked(store_url):
            wait_for(lambda: sent() == 2 * chunk, push_process, "writing its second chunk")
            push_process.send_signal(signal.SIGKILL)
            push_process.wait()
    finally:
        push_process.kill()
        push_process.wait()
    assert push_process.returncode == -signal.SIGKILL
    assert sum(store.write_back.outcome_counts("crm", "Activity").values()) == chunk
    assert len(store.write_back.intents("crm", "Activity", keys)) == chunk

    org.control.clear_faults()
    time.sleep(0.1)
    assert main(["push", "crm"]) == 0
    tasks, events = written(sf, "Task", "k%"), written(sf, "Event", "k%")
    assert len(tasks) + len(events) == len(rows)   # keys are unique in Salesforce: each exactly once
    assert sorted([*tasks, *events]) == keys
    assert all(task["TaskSubtype"] == "Call" for task in tasks.values())
    counts = store.write_back.outcome_counts("crm", "Activity")
    assert counts.get("rejected", 0) == 0 and sum(counts.values()) == len(rows)
    assert not store.write_back.intents("crm", "Activity", keys)
    capsys.readouterr()
    assert main(["rejected", "crm", "--object", "Event"]) == 0 and "no rejected rows" in capsys.readouterr().out
    links = store.write_back.links("crm", "Activity", keys)
    assert sorted(links.values()) == sorted(r["Id"] for r in [*tasks.values(), *events.values()])
