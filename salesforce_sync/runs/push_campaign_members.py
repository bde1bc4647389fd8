"""Campaign membership push: a source's people join one Campaign, their engagement as the member Status.

Per chunk of new and changed rows: each row's person is found (the key's Contact or Lead write-back link, then
the email through the people identity, then the email in Salesforce; Contacts before Leads, a converted Lead
standing for its Contact), their existing membership is read (CampaignId + ContactId/LeadId, batched SOQL)
before anything is created, and members are created or have their Status moved. Since every push reads the
memberships first, a push killed after Salesforce created members creates none twice on the rerun; a create
refused with DUPLICATE_VALUE is counted as there only once a re-read finds the member.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

from simple_salesforce import format_soql

from salesforce_sync.config.errors import ConfigError
from salesforce_sync.config.models import OWN_CLIENT_NAME, IntegrationConfig, WriteBackCampaignMembers
from salesforce_sync.runs.health import require_budget
from salesforce_sync.runs.push import PushResult, PushRun, Report, oldest_first, written_outcome
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.salesforce.writes import COLLECTION_SIZE, RecordError, RecordResult, RecordWriter
from salesforce_sync.store import AudienceStore
from salesforce_sync.store.write_back import RowOutcome
from salesforce_sync.sync.campaign_members import CampaignPerson, plan_member
from salesforce_sync.sync.write_back import RowPlan, email_key, row_hash

OBJECT = "CampaignMember"
CAMPAIGN_ID = re.compile(r"701[a-zA-Z0-9]{12}(?:[a-zA-Z0-9]{3})?")


def push_campaign_members(store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig, *,
                          full: bool = False, dry_run: bool = False, run_id: str | None = None,
                          report: Report | None = None, confirm: Callable[[], None] | None = None) -> PushResult:
    """Push the integration's campaign membership; see the module docstring."""
    assert integration.write_back is not None and integration.write_back.campaign_members is not None
    settings = integration.write_back.campaign_members
    run = PushRun(store, client, integration, OBJECT, full=full, dry_run=dry_run, run_id=run_id, report=report,
                  confirm=confirm)
    push = _MembershipPush(store, client, integration, settings)
    fingerprint = settings.model_dump_json()
    for chunk in store.write_back.source_chunks(table=settings.table, query=settings.query, key=settings.key,
                                                chunk_rows=integration.write_back.chunk_size):
        rows = {str(row[settings.key]): row for row in chunk if row[settings.key] not in (None, "")}
        hashes = {key: row_hash(row, settings.source_columns, fingerprint) for key, row in rows.items()}
        run.send(hashes, lambda keys: push.plan({key: rows[key] for key in keys}), push.write)
    return run.finish(push.write_calls)


class _MembershipPush:
    """Matching and writing for one campaign; the campaign and its member statuses are read once."""

    def __init__(self, store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig,
                 settings: WriteBackCampaignMembers) -> None:
        assert integration.write_back is not None
        self.store, self.client, self.integration, self.settings = store, client, integration, settings
        self.writer = RecordWriter(client, bulk_threshold=integration.write_back.bulk_threshold,
                                   client_name=OWN_CLIENT_NAME)
        self.write_calls = 0

    @cached_property
    def _statuses(self) -> tuple[set[str], list[int]]:
        """The campaign's member status labels, and the sort order a new one gets (read once, when needed)."""
        statuses = self.writer.find("CampaignMemberStatus", "CampaignId", [self.campaign_id], ["Label", "SortOrder"])
        return {s["Label"] for s in statuses}, [max((int(float(s["SortOrder"] or 0)) for s in statuses), default=0) + 1]

    @property
    def statuses(self) -> set[str]:
        return self._statuses[0]

    @cached_property
    def campaign_id(self) -> str:
        """The configured Campaign's Id: the value itself when it is a Campaign's Id, else the one Campaign of
        that Name."""
        wanted = self.settings.campaign
        found = self.writer.find("Campaign", "Id", [wanted], ["Name"]) if _looks_like_id(wanted) else []
        found = found or self.writer.find("Campaign", "Name", [wanted], ["Name"])
        where = f"integration '{self.integration.id}': write_back.campaign_members.campaign"
        if not found:
            raise ConfigError(f"{where}: no Campaign has the Id or Name {wanted!r}")
        if len(found) > 1:
            raise ConfigError(f"{where}: {len(found)} Campaigns are named {wanted!r}; give the Campaign's Id")
        return found[0]["Id"]

    # ---- planning -------------------------------------------------------------------------------

    def plan(self, rows: Mapping[str, Mapping[str, Any]]) -> list[RowPlan]:
        people = self._people(rows)
        members = self._members([i for person in people.values() for i in person.ids])
        plans = []
        for key, row in rows.items():
            person = people.get(key)
            member = next((members[i] for i in person.ids if i in members), None) if person else None
            plans.append(plan_member(self.settings, key, row, self.campaign_id, person, member, self.statuses))
        return plans

    def _people(self, rows: Mapping[str, Mapping[str, Any]]) -> dict[str, CampaignPerson]:
        """Each row's Contact and Lead: by the key's links, the people identity, then Salesforce by email;
        a converted Lead gives way to the Contact it became."""
        integration_id, keys = self.integration.id, list(rows)
        contacts = {k: (i, "linked") for k, i in self.store.write_back.links(integration_id, "Contact", keys).items()}
        leads = {k: (i, "linked") for k, i in self.store.write_back.links(integration_id, "Lead", keys).items()}
        emails = {key: e for key, row in rows.items() if (e := email_key(row.get(self.settings.email_column)))}
        known = self.store.people.by_email(self.integration.project, [emails[k] for k in keys
                                                                        if k in emails and k not in contacts])
        for key in keys:
            match = known.get(emails.get(key, ""))
            if match is not None and match.contacts.get(integration_id):
                contacts.setdefault(key, (match.contacts[integration_id][0], "people"))
            if match is not None and match.leads.get(integration_id):
                leads.setdefault(key, (match.leads[integration_id][0], "people"))
        unknown = {k: e for k, e in emails.items() if k not in contacts}
        if unknown:
            by_email = self._oldest_by_email("Contact", unknown.values(), ["Email", "CreatedDate"])
            for key, email in unknown.items():
                if email in by_email:
                    contacts[key] = (by_email[email]["Id"], "email")
        unknown = {k: e for k, e in emails.items() if k not in contacts and k not in leads}
        if unknown:
            by_email = self._oldest_by_email("Lead", unknown.values(), ["Email", "CreatedDate"],
                                             where="IsConverted = false")
            for key, email in unknown.items():
                if email in by_email:
                    leads[key] = (by_email[email]["Id"], "email")
        lead_ids = [i for key, (i, _) in leads.items() if key not in contacts]
        converted = {r["Id"]: r["ConvertedContactId"] for r in self._find(
            "Lead", "Id", lead_ids, ["ConvertedContactId"], where="IsConverted = true")}
        people = {}
        for key in keys:
            contact, lead = contacts.get(key), leads.get(key)
            contact_id = contact[0] if contact else converted.get(lead[0]) if lead else None
            lead_id = lead[0] if lead else None
            if contact_id is None and lead_id is None:
                continue
            ids = tuple(i for i in (contact_id, lead_id) if i)
            people[key] = CampaignPerson(contact_id, None if contact_id else lead_id, ids,
                                         (contact or lead or ("", ""))[1])
        return people

    def _find(self, object_name: str, field_name: str, values: Iterable[str], fields: Sequence[str], *,
              where: str = "") -> list[dict[str, Any]]:
        values = [v for v in dict.fromkeys(values) if v]
        return self.writer.find(object_name, field_name, values, fields, where=where) if values else []

    def _oldest_by_email(self, object_name: str, emails: Iterable[str], fields: Sequence[str], *,
                         where: str = "") -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for record in oldest_first(self._find(object_name, "Email", emails, fields, where=where)):
            found.setdefault(email_key(record["Email"]) or "", record)
        return found

    def _members(self, person_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The campaign's members among these Contacts and Leads, by the person's Id."""
        where = format_soql("CampaignId = {}", self.campaign_id)
        found: dict[str, dict[str, Any]] = {}
        for person_field in ("ContactId", "LeadId"):
            for member in self._find(OBJECT, person_field, person_ids, ["ContactId", "LeadId", "Status"], where=where):
                for person_id in (member.get("ContactId"), member.get("LeadId")):
                    if person_id:
                        found.setdefault(person_id, member)
        return found

    # ---- writing --------------------------------------------------------------------------------

    def write(self, plans: list[RowPlan], hashes: Mapping[str, str], run_id: str | None) -> list[RowOutcome]:
        """Create missing statuses (when allowed), then members, then Status moves; re-read members whose create
        Salesforce refused as a duplicate; store every row's outcome."""
        groups: dict[str, list[RowPlan]] = {}
        for plan in plans:
            groups.setdefault(plan.action, []).append(plan)
        sending = groups.get("create", []) + groups.get("update", [])
        missing = sorted({p.values["Status"] for p in sending if p.values.get("Status") not in (None, *self.statuses)})
        writes = math.ceil(len(groups.get("create", ())) / COLLECTION_SIZE) + \
            math.ceil(len(groups.get("update", ())) / COLLECTION_SIZE) + (1 if missing else 0)
        if writes:
            require_budget(self.client, self.integration, writes, f"write-back of {OBJECT}")
        refused = self._create_statuses(missing)
        outcomes = [RowOutcome(p.key, "unchanged", hashes[p.key], p.salesforce_id) for p in groups.get("unchanged", ())]
        outcomes += [RowOutcome(p.key, "skipped", hashes[p.key], message=p.message) for p in groups.get("skip", ())]
        outcomes += [RowOutcome(p.key, "rejected", hashes[p.key], p.salesforce_id, p.status_code, p.message, p.fields,
                                found_before_sending=True) for p in groups.get("reject", ())]
        for plan in [p for p in sending if p.values.get("Status") in refused]:
            error = refused[plan.values["Status"]]
            outcomes.append(RowOutcome(plan.key, "rejected", hashes[plan.key], plan.salesforce_id, error.status_code,
                                       f"creating member status {plan.values['Status']!r}: {error.message}",
                                       error.fields, retryable=error.retryable))
        sending = [p for p in sending if p.values.get("Status") not in refused]
        creates = [p for p in sending if p.action == "create"]
        results = dict(zip([p.key for p in creates], self._send("insert", creates)))
        duplicates = [p for p in creates if (r := results[p.key]).error and r.error.status_code == "DUPLICATE_VALUE"]
        settled = self._already_members(duplicates) if duplicates else {}
        moves = [p for p in sending if p.action == "update"] + [s for s in settled.values() if s.action == "update"]
        moved = dict(zip([p.key for p in moves], self._send("update", moves)))
        for plan in creates:
            again = settled.get(plan.key)
            if again is None:
                outcomes.append(written_outcome(plan, results[plan.key], hashes[plan.key]))
            elif again.action == "unchanged":
                outcomes.append(RowOutcome(plan.key, "unchanged", hashes[plan.key], again.salesforce_id))
        outcomes += [written_outcome(plan, moved[plan.key], hashes[plan.key]) for plan in moves]
        self.store.write_back.record_outcomes(self.integration.id, OBJECT, outcomes, run_id)
        return outcomes

    def _send(self, operation: str, plans: list[RowPlan]) -> list[RecordResult]:
        if not plans:
            return []
        before = self.writer.api_calls
        results = self.writer.write(OBJECT, operation, [p.values for p in plans])  # type: ignore[arg-type]
        self.write_calls += self.writer.api_calls - before
        return results

    def _create_statuses(self, labels: list[str]) -> dict[str, RecordError]:
        """Add the campaign's missing member statuses (not responded, after the others); the refused ones' errors."""
        if not labels:
            return {}
        records = [{"CampaignId": self.campaign_id, "Label": label, "HasResponded": False,
                    "SortOrder": self._statuses[1][0] + n} for n, label in enumerate(labels)]
        before = self.writer.api_calls
        results = self.writer.write("CampaignMemberStatus", "insert", records)
        self.write_calls += self.writer.api_calls - before
        self._statuses[1][0] += len(labels)
        refused = {}
        for label, result in zip(labels, results):
            if result.error is None:
                self.statuses.add(label)
            else:
                refused[label] = result.error
        return refused

    def _already_members(self, plans: list[RowPlan]) -> dict[str, RowPlan]:
        """For creates refused as duplicates: the member a re-read finds, as an unchanged row or a Status move;
        rows it does not find keep their refusal."""
        ids = {p.key: p.values.get("ContactId") or p.values.get("LeadId") for p in plans}
        members = self._members(list(ids.values()))
        settled = {}
        for plan in plans:
            member = members.get(ids[plan.key])
            if member is None:
                continue
            status = plan.values.get("Status")
            if status is None or member.get("Status") == status:
                settled[plan.key] = RowPlan(plan.key, "unchanged", member["Id"], matched_by="re-read")
            else:
                settled[plan.key] = RowPlan(plan.key, "update", member["Id"], {"Id": member["Id"], "Status": status},
                                            "re-read")
        return settled


def _looks_like_id(value: str) -> bool:
    return CAMPAIGN_ID.fullmatch(value) is not None
