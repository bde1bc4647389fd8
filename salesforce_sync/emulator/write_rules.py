"""What is special about writing each object, declared once per object: fields one of which a new record
needs, the flag that makes a record read-only, its standard duplicate rule, further checks (Task/Event
WhoId/WhatId, Event duration, one CampaignMember per person and campaign), values derived on create, and what
follows a change (CampaignMember rows mirror their Lead or Contact).

Field-level checks every object shares (types, lengths, picklists, emails, references, owners, unique
values) live in records.py; this module is only the exceptions.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from salesforce_sync.emulator.errors import SalesforceApiError
from salesforce_sync.emulator.ids import KEY_PREFIXES
from salesforce_sync.emulator.schema import CAMPAIGN_MEMBER_MIRRORS, CONTACT, LEAD, ObjectDef, label_for

_ADDRESS_PARTS = ("Street", "City", "State", "PostalCode", "Country")


def _mirror_sources(person: ObjectDef, address_prefix: str) -> dict[str, str]:
    """CampaignMember field -> the person's field it copies (a Contact's address is its Mailing address);
    mirrors the person's object does not have stay empty."""
    sources = {mirror: (address_prefix + mirror if mirror in _ADDRESS_PARTS else mirror)
               for mirror in CAMPAIGN_MEMBER_MIRRORS}
    return {mirror: source for mirror, source in sources.items() if person.field(source) is not None}


MIRROR_SOURCES = {"Lead": _mirror_sources(LEAD, ""), "Contact": _mirror_sources(CONTACT, "Mailing")}
DUPLICATE_MESSAGE = "You're creating a duplicate record. We recommend you use an existing record instead."
DUPLICATE_ACTIONS = ("Block", "Alert")
# A new org's standard duplicate rules: active on create and edit, alerting (which refuses an API save unless
# the request sends Sforce-Duplicate-Rule-Header: allowSave=true).
STANDARD_DUPLICATE_RULES = {"Lead": "Alert", "Contact": "Alert", "Account": "Alert"}


def field_label(obj: ObjectDef, name: str) -> str:
    """The label a message starts with (`Email: invalid email address: ...`), as describe reports it."""
    f = obj.field(name)
    return (f.label if f and f.label else "") or label_for(name)


@dataclass(frozen=True)
class Change:
    """A record about to be saved: its values after the write, which fields the write sets, and whether it is new."""

    obj: ObjectDef
    record: dict[str, Any]
    changed: frozenset[str]
    creating: bool
    own_id: str | None


@dataclass(frozen=True)
class DuplicateRule:
    """A standard duplicate rule and its matching rule: `keys` are the fields whose change re-runs it, `find`
    returns the Ids of live records it matches."""

    name: str
    match_rule: str
    match_engine: str
    keys: tuple[str, ...]
    find: Callable[[sqlite3.Connection, Change], list[str]]


@dataclass(frozen=True)
class WriteRules:
    required_one_of: tuple[str, ...] = ()  # a new record needs at least one of these
    read_only_flag: tuple[str, str, str] | None = None  # (flag field, statusCode, message) once the flag is true
    duplicate_rule: DuplicateRule | None = None
    checks: tuple[Callable[[sqlite3.Connection, Change], None], ...] = ()
    derive: Callable[[sqlite3.Connection, dict[str, Any]], None] | None = None  # fill derived values on create
    after_update: Callable[[sqlite3.Connection, str, dict[str, Any]], None] | None = None
    after_delete: Callable[[sqlite3.Connection, str], None] | None = None
    indexed: tuple[str, ...] = ()  # looked up on every write (duplicate keys): indexed case-insensitively


# ---- duplicate matching ----------------------------------------------------------------------------------

def _live(conn: sqlite3.Connection, table: str, where: str, params: tuple, own_id: str | None) -> list[str]:
    rows = conn.execute(f'SELECT "Id" FROM "{table}" WHERE {where} AND "IsDeleted" = 0 AND "Id" != ? ORDER BY "Id"',
                        (*params, own_id or "")).fetchall()
    return [r[0] for r in rows]


def _same_email(conn: sqlite3.Connection, change: Change) -> list[str]:
    email = change.record.get("Email")
    if not email:
        return []
    return _live(conn, change.obj.name, '"Email" = ? COLLATE NOCASE', (email,), change.own_id)


def website_domain(website: str | None) -> str | None:
    """`https://www.Acme.example/about` -> `acme.example`: scheme, `www.`, port and path dropped, lower case."""
    if not website:
        return None
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", website.strip().lower())
    host = re.split(r"[/?#:]", host, maxsplit=1)[0].removeprefix("www.")
    return host or None


def _same_account(conn: sqlite3.Connection, change: Change) -> list[str]:
    found: list[str] = []
    name = change.record.get("Name")
    if name:
        found += _live(conn, "Account", '"Name" = ? COLLATE NOCASE', (name,), change.own_id)
    domain = website_domain(change.record.get("Website"))
    if domain:
        for record_id, website in conn.execute(
                'SELECT "Id", "Website" FROM "Account" WHERE "IsDeleted" = 0 AND "Id" != ? AND "Website" LIKE ?',
                (change.own_id or "", f"%{domain}%")):
            if website_domain(website) == domain and record_id not in found:
                found.append(record_id)
    return found


def duplicate_error(rule: DuplicateRule, object_name: str, action: str, matches: list[str],
                    api_version: str) -> SalesforceApiError:
    """DUPLICATES_DETECTED with the body a real org sends, `duplicateResut` key typo included."""
    records = [{"additionalInformation": [], "fieldDiffs": [], "matchConfidence": 100.0,
                "record": {"attributes": {"type": object_name,
                                          "url": f"/services/data/v{api_version}/sobjects/{object_name}/{i}"},
                           "Id": i}} for i in matches]
    result = {"allowSave": action == "Alert", "duplicateRule": rule.name, "duplicateRuleEntityType": object_name,
              "errorMessage": DUPLICATE_MESSAGE, "matchResults": [{
                  "entityType": object_name, "errors": [], "matchEngine": rule.match_engine,
                  "matchRecords": records, "rule": rule.match_rule, "size": len(records), "success": True}]}
    return SalesforceApiError(400, "DUPLICATES_DETECTED", DUPLICATE_MESSAGE, [], {"duplicateResut": result})


# ---- object checks ---------------------------------------------------------------------------------------

def _lead_who_has_no_what(conn: sqlite3.Connection, change: Change) -> None:
    """A Task or Event whose WhoId is a Lead can't also be related to a record (WhatId)."""
    if not ({"WhoId", "WhatId"} & change.changed):
        return
    who, what = change.record.get("WhoId"), change.record.get("WhatId")
    if who and what and who.startswith(KEY_PREFIXES["Lead"]):
        raise SalesforceApiError(
            400, "FIELD_INTEGRITY_EXCEPTION",
            f"{field_label(change.obj, 'WhatId')}: a Lead in {field_label(change.obj, 'WhoId')} can't have a "
            f"related-to record: {what}", ["WhatId"])


def _event_has_duration(conn: sqlite3.Connection, change: Change) -> None:
    """An Event that is not all-day needs DurationInMinutes or EndDateTime."""
    record = change.record
    if not change.creating and not ({"IsAllDayEvent", "DurationInMinutes", "EndDateTime"} & change.changed):
        return
    if not record.get("IsAllDayEvent") and record.get("DurationInMinutes") is None \
            and record.get("EndDateTime") is None:
        raise SalesforceApiError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [DurationInMinutes]",
                                 ["DurationInMinutes"])


def _one_membership(conn: sqlite3.Connection, change: Change) -> None:
    """One CampaignMember per person and campaign; a converted Lead can leave a campaign but not join one."""
    if not change.creating:
        return
    record = change.record
    lead_id, contact_id = record.get("LeadId"), record.get("ContactId")
    if conn.execute('SELECT 1 FROM "CampaignMember" WHERE "CampaignId" = ? AND ("LeadId" = ? OR "ContactId" = ?)',
                    (record["CampaignId"], lead_id or "", contact_id or "")).fetchone():
        raise SalesforceApiError(400, "DUPLICATE_VALUE", "Already a campaign member.", [])
    if lead_id and conn.execute('SELECT "IsConverted" FROM "Lead" WHERE "Id" = ?', (lead_id,)).fetchone()[0]:
        raise SalesforceApiError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", ["LeadId"])


def _mirror_person(conn: sqlite3.Connection, stored: dict[str, Any]) -> None:
    """A new CampaignMember copies its Lead's or Contact's name, address, email, phones and opt-outs."""
    person_type = "Lead" if stored.get("LeadId") else "Contact"
    person_id = stored.get("LeadId") or stored.get("ContactId")
    sources = MIRROR_SOURCES[person_type]
    company = ', "Company"' if person_type == "Lead" else ""
    cols = ", ".join(f'"{c}"' for c in sources.values())
    row = conn.execute(f'SELECT {cols}{company} FROM "{person_type}" WHERE "Id" = ?', (person_id,)).fetchone()
    stored.update(dict(zip(sources, row)))
    stored.update({"Type": person_type, "LeadOrContactId": person_id})
    if company:
        stored["CompanyOrAccount"] = row[-1]


def _activity_account(conn: sqlite3.Connection, stored: dict[str, Any]) -> None:
    """A Task's or Event's AccountId follows what it is about: an Account WhatId, an Opportunity's Account, or
    else the Contact in WhoId's Account (a Lead has none)."""
    what, who = stored.get("WhatId") or "", stored.get("WhoId") or ""
    account = None
    if what.startswith(KEY_PREFIXES["Account"]):
        account = what
    elif what.startswith(KEY_PREFIXES["Opportunity"]):
        account = _parent_account(conn, "Opportunity", what)
    elif who.startswith(KEY_PREFIXES["Contact"]):
        account = _parent_account(conn, "Contact", who)
    stored["AccountId"] = account


def _parent_account(conn: sqlite3.Connection, object_name: str, record_id: str) -> str | None:
    row = conn.execute(f'SELECT "AccountId" FROM "{object_name}" WHERE "Id" = ?', (record_id,)).fetchone()
    return row[0] if row else None


def _memberships_follow(person_type: str) -> tuple[Callable, Callable]:
    mirror_of = {source: mirror for mirror, source in MIRROR_SOURCES[person_type].items()}

    def after_update(conn: sqlite3.Connection, record_id: str, changes: dict[str, Any]) -> None:
        mirrored = {mirror_of[k]: v for k, v in changes.items() if k in mirror_of}
        if mirrored:
            sets = ", ".join(f'"{k}" = ?' for k in mirrored)
            conn.execute(f'UPDATE "CampaignMember" SET {sets} WHERE "{person_type}Id" = ?',
                         (*mirrored.values(), record_id))

    def after_delete(conn: sqlite3.Connection, record_id: str) -> None:
        conn.execute(f'DELETE FROM "CampaignMember" WHERE "{person_type}Id" = ?', (record_id,))

    return after_update, after_delete


_lead_update, _lead_delete = _memberships_follow("Lead")
_contact_update, _contact_delete = _memberships_follow("Contact")

OBJECT_RULES: dict[str, WriteRules] = {
    "Lead": WriteRules(
        read_only_flag=("IsConverted", "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead"),
        duplicate_rule=DuplicateRule("Standard_Lead_Duplicate_Rule", "Standard_Lead_Match_Rule_v1_0",
                                     "ExactMatchEngine", ("Email",), _same_email),
        after_update=_lead_update, after_delete=_lead_delete, indexed=("Email",)),
    "Contact": WriteRules(
        duplicate_rule=DuplicateRule("Standard_Contact_Duplicate_Rule", "Standard_Contact_Match_Rule_v1_1",
                                     "ExactMatchEngine", ("Email",), _same_email),
        after_update=_contact_update, after_delete=_contact_delete, indexed=("Email",)),
    "Account": WriteRules(
        duplicate_rule=DuplicateRule("Standard_Account_Duplicate_Rule", "Standard_Account_Match_Rule_v1_0",
                                     "FuzzyMatchEngine", ("Name", "Website"), _same_account),
        indexed=("Name",)),
    "CampaignMember": WriteRules(required_one_of=("LeadId", "ContactId"), checks=(_one_membership,),
                                 derive=_mirror_person),
    "Task": WriteRules(checks=(_lead_who_has_no_what,), derive=_activity_account),
    "Event": WriteRules(checks=(_lead_who_has_no_what, _event_has_duration), derive=_activity_account),
}
NO_RULES = WriteRules()


def rules_for(object_name: str) -> WriteRules:
    return OBJECT_RULES.get(object_name, NO_RULES)
