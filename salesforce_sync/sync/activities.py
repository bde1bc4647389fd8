"""What an activity write-back sends, decided without I/O: which activities are due (after the switch-on), the
Task or Event each becomes, on whom (WhoId) and about what (WhatId, only where Salesforce allows it), and its
values (status, subtype, duration, body)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from salesforce_sync.config.models import ActivityType, WriteBackActivities
from salesforce_sync.sync.write_back import PRECHECK_RESTRICTED_PICKLIST, RowPlan, picklist_problems, sendable

#: Our code for an activity we cannot write as it is (unknown type, no time it occurred), found before sending.
PRECHECK_INVALID_ACTIVITY = "PRECHECK_INVALID_ACTIVITY"
LEAD_PREFIX, CONTACT_PREFIX = "00Q", "003"
#: What a Contact's activity may be related to (WhatId): Accounts and Opportunities. A Lead's may not be related
#: to anything.
CONTACT_WHAT_PREFIXES = {"001": "Account", "006": "Opportunity"}
SUBJECT_LENGTH = 255


@dataclass(frozen=True)
class Who:
    """The Lead or Contact an activity concerns, and how it was found."""

    salesforce_id: str
    found_by: str

    @property
    def object_type(self) -> str:
        return "Lead" if self.salesforce_id.startswith(LEAD_PREFIX) else "Contact"


@dataclass(frozen=True)
class ActivityPlan(RowPlan):
    """A row plan that also says which object (Task or Event) the activity is written as."""

    salesforce_object: str = ""


def occurred_at(value: Any) -> dt.datetime | None:
    """A source's timestamp (text, datetime) in UTC; naive ones are taken as UTC; None when it is none."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def is_due(settings: WriteBackActivities, row: Mapping[str, Any], since: dt.datetime) -> bool:
    """Whether the activity is written at all: it occurred at or after `since` (one without a readable time is,
    so its rejection says why)."""
    when = occurred_at(row.get(settings.occurred_at_column))
    return when is None or when >= since


def activity_type(settings: WriteBackActivities, row: Mapping[str, Any]) -> ActivityType | None:
    """The configured type of the row's activity type (case-insensitive), None when it has none."""
    value = row.get(settings.type_column)
    if not isinstance(value, str):
        return None
    types = {name.casefold(): kind for name, kind in settings.types.items()}
    return types.get(value.strip().casefold())


def salesforce_datetime(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def related_to(who: Who, what: Any) -> str | None:
    """The WhatId Salesforce allows: an Account or Opportunity Id for a Contact's activity, none for a Lead's."""
    if who.object_type != "Contact" or not isinstance(what, str):
        return None
    return what if what[:3] in CONTACT_WHAT_PREFIXES else None


def plan_activity(settings: WriteBackActivities, row: Mapping[str, Any], who: Who | None, *,
                  record_id: str | None, owner_id: str | None,
                  restricted: Mapping[str, Mapping[str, tuple[str, ...]]]) -> ActivityPlan:
    """The upsert (on the external ID) of one activity: a Task or Event on its person, or why not. `record_id`:
    the record it already is (its fields that Salesforce sets on create only are then left out)."""
    key = str(row[settings.key])
    kind = activity_type(settings, row)
    if kind is None:
        return ActivityPlan(key, "reject", record_id, status_code=PRECHECK_INVALID_ACTIVITY,
                            message=f"found before sending: activity type {row.get(settings.type_column)!r} is not "
                                    f"one of write_back.activities.types ({', '.join(settings.types)})",
                            fields=(settings.type_column,))
    when = occurred_at(row.get(settings.occurred_at_column))
    if when is None:
        return ActivityPlan(key, "reject", record_id, status_code=PRECHECK_INVALID_ACTIVITY,
                            message=f"found before sending: {settings.occurred_at_column} "
                                    f"{row.get(settings.occurred_at_column)!r} is not a date and time",
                            fields=(settings.occurred_at_column,), salesforce_object=kind.object)
    if who is None:
        person = " / ".join(f"{column} {row.get(column)!r}" for column in (settings.person_key_column,
                                                                            settings.email_column)
                            if column and row.get(column) not in (None, ""))
        return ActivityPlan(key, "skip", record_id, salesforce_object=kind.object,
                            message=f"no Lead or Contact found for {person or 'an activity without person key or email'}"
                                    "; tried again on the next push")
    values = _values(settings, row, kind, who, when, exists=record_id is not None)
    if owner_id is not None:
        values["OwnerId"] = owner_id
    problems = picklist_problems(values, restricted.get(kind.object, {}))
    if problems:
        return ActivityPlan(key, "reject", record_id, values, who.found_by, PRECHECK_RESTRICTED_PICKLIST,
                            "; ".join(m for _, m in problems), tuple(f for f, _ in problems), kind.object)
    return ActivityPlan(key, "upsert", record_id, {**values, settings.external_id_field: key}, who.found_by,
                        salesforce_object=kind.object)


def _values(settings: WriteBackActivities, row: Mapping[str, Any], kind: ActivityType, who: Who,
            when: dt.datetime, *, exists: bool) -> dict[str, Any]:
    subject = sendable(row.get(settings.subject_column))
    values: dict[str, Any] = {"WhoId": who.salesforce_id,
                              "Subject": str(subject)[:SUBJECT_LENGTH] if subject else str(
                                  row.get(settings.type_column)).strip().capitalize()}
    what = related_to(who, row.get(settings.what_column)) if settings.what_column else None
    if what is not None:
        values["WhatId"] = what
    if settings.include_bodies and settings.description_column:
        body = sendable(row.get(settings.description_column))
        if body is not None:
            values["Description"] = body
    minutes = sendable(row.get(settings.duration_column)) if settings.duration_column else None
    if kind.object == "Event":
        values["StartDateTime"] = salesforce_datetime(when)
        values["DurationInMinutes"] = int(float(minutes)) if minutes is not None else settings.default_event_minutes
        return values
    values["ActivityDate"] = when.date().isoformat()
    status = sendable(row.get(settings.status_column)) if settings.status_column else None
    if status is not None:
        values["Status"] = settings.status_map.get(str(status), str(status))
    if kind.subtype is not None and not exists:  # TaskSubtype is set on create only
        values["TaskSubtype"] = kind.subtype
    if kind.subtype == "Call" and minutes is not None:
        values["CallDurationInSeconds"] = round(float(minutes) * 60)
    return values
