"""What an activity write-back sends, without I/O: Task or Event per type, WhatId only for a Contact's activity
(an Account or Opportunity), bodies by the switch, statuses, fields set on create only, and the config's rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from salesforce_sync.config.models import WriteBackActivities, WriteBackConfig
from salesforce_sync.sync.activities import PRECHECK_INVALID_ACTIVITY, Who, is_due, occurred_at, plan_activity
from salesforce_sync.sync.write_back import PRECHECK_RESTRICTED_PICKLIST

CONTACT, LEAD = Who("003000000000001AAA", "contact email"), Who("00Q000000000001AAA", "lead link")
ACCOUNT, OPPORTUNITY, CAMPAIGN = "001000000000001AAA", "006000000000001AAA", "701000000000001AAA"


def settings(**values: Any) -> WriteBackActivities:
    return WriteBackActivities.model_validate({
        "table": "activities", "key": "id", "email_column": "email", "description_column": "body",
        "status_column": "status", "duration_column": "minutes", "what_column": "what", **values})


def row(**values: Any) -> dict[str, Any]:
    return {"id": "a1", "email": "pat@example.test", "type": "call", "subject": "Intro call", "body": "notes",
            "occurred_at": "2026-12-01 09:30:00", "status": "done", "minutes": 12, "what": ACCOUNT, **values}


def plan(who: Who | None = CONTACT, *, config: WriteBackActivities | None = None, record_id: str | None = None,
         restricted: dict[str, dict[str, tuple[str, ...]]] | None = None, **values: Any):
    return plan_activity(config or settings(), row(**values), who, record_id=record_id, owner_id=None,
                         restricted=restricted or {})


def test_a_call_is_a_completed_call_task_on_its_contact_related_to_the_account() -> None:
    call = plan()
    assert (call.action, call.salesforce_object) == ("upsert", "Task")
    assert call.values == {"WhoId": CONTACT.salesforce_id, "Subject": "Intro call", "WhatId": ACCOUNT,
                           "ActivityDate": "2026-12-01", "Status": "Completed", "TaskSubtype": "Call",
                           "CallDurationInSeconds": 720, "Activity_Key__c": "a1"}
    assert "Description" not in call.values  # bodies are left out unless include_bodies


def test_a_visit_is_an_event_with_its_duration_or_the_default() -> None:
    visit = plan(type="Visit", minutes=None, what=OPPORTUNITY)
    assert visit.salesforce_object == "Event"
    assert visit.values["StartDateTime"] == "2026-12-01T09:30:00.000Z"
    assert visit.values["DurationInMinutes"] == 30 and visit.values["WhatId"] == OPPORTUNITY
    assert "Status" not in visit.values and "TaskSubtype" not in visit.values


def test_what_id_only_where_salesforce_allows_it() -> None:
    assert "WhatId" not in plan(LEAD).values             # a Lead's activity is related to nothing
    assert "WhatId" not in plan(what=CAMPAIGN).values    # a Contact's only to an Account or Opportunity
    assert plan(what=OPPORTUNITY).values["WhatId"] == OPPORTUNITY


def test_bodies_status_map_and_fields_set_on_create_only() -> None:
    with_bodies = settings(include_bodies=True, status_map={"done": "Completed", "waiting": "Deferred"})
    assert plan(config=with_bodies).values["Description"] == "notes"
    assert plan(config=with_bodies, status="waiting").values["Status"] == "Deferred"
    assert plan(config=with_bodies, status="In Progress").values["Status"] == "In Progress"  # unmapped: as it is
    existing = plan(record_id="00T000000000001AAA")
    assert existing.salesforce_id == "00T000000000001AAA" and "TaskSubtype" not in existing.values


def test_what_cannot_be_written_is_skipped_or_rejected_with_a_reason() -> None:
    nobody = plan(None)
    assert nobody.action == "skip" and "no Lead or Contact found for email 'pat@example.test'" in nobody.message
    unknown = plan(type="fax")
    assert (unknown.action, unknown.status_code) == ("reject", PRECHECK_INVALID_ACTIVITY)
    assert "'fax' is not one of write_back.activities.types" in unknown.message
    undated = plan(occurred_at="yesterday")
    assert (undated.action, undated.fields) == ("reject", ("occurred_at",))
    refused = plan(restricted={"Task": {"Status": ("Not Started", "Completed")}}, status="Archived")
    assert (refused.status_code, refused.fields) == (PRECHECK_RESTRICTED_PICKLIST, ("Status",))


def test_only_activities_from_the_switch_on_are_due() -> None:
    since = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    config = settings()
    assert is_due(config, row(), since) and not is_due(config, row(occurred_at="2026-12-01T09:29:59Z"), since)
    assert is_due(config, row(occurred_at=None), since)  # so its rejection says why
    assert occurred_at("2026-12-01T10:30:00+01:00") == since


@pytest.mark.parametrize(("values", "message"), [
    ({"types": {"visit": {"object": "Task"}}}, "visits are written as Events only"),
    ({"types": {"meeting": {"object": "Event", "subtype": "Call"}}}, "only Tasks have a subtype"),
    ({"email_column": None}, "give person_key_column or email_column"),
    ({"query": "SELECT 1"}, "exactly one of table and query"),
])
def test_config_refuses_what_salesforce_or_the_push_cannot_do(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(**values)


def test_a_write_back_of_activities_only_needs_no_objects() -> None:
    config = WriteBackConfig.model_validate({"activities": {"table": "a", "key": "id", "email_column": "email"}})
    assert config.pushed == ("Activity",)
    with pytest.raises(ValidationError, match="name at least one object to write"):
        WriteBackConfig.model_validate({})
