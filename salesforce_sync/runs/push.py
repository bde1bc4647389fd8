"""One write-back push, in plain Python: a source's new and changed rows become Salesforce records.

Per object, chunk by chunk of the source: rows whose content Salesforce has not accepted yet (their hash differs
from the snapshot) are matched (linked Id, external ID, email, website domain, in the configured order, many keys
per query), planned field by field against the record's current values, written (upsert on the external ID
where one is configured), and each row's outcome stored with the snapshot and link of every accepted row. A
create without an external ID is preceded by a committed intent, so a rerun after a kill matches before
creating again: no duplicate, and a row whose outcome was never stored is simply sent again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from salesforce_sync.config.models import (
    OWN_CLIENT_NAME,
    IntegrationConfig,
    WriteBackObject,
    WriteBackObjectConfig,
)
from salesforce_sync.runs.health import require_budget
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.salesforce.writes import (
    COLLECTION_SIZE,
    OUTCOME_UNKNOWN,
    RecordResult,
    RecordWriter,
)
from salesforce_sync.store import AudienceStore, SyncEvent
from salesforce_sync.store.write_back import RowOutcome
from salesforce_sync.sync.write_back import (
    Candidates,
    RowPlan,
    email_key,
    is_empty,
    is_true,
    plan_row,
    reconcile_order,
    rejection_rate,
    restricted_picklists,
    row_hash,
    website_domain,
)

log = logging.getLogger(__name__)

#: The outcome each successful write of a plan's action is.
_WRITTEN = {"create": "created", "update": "updated"}
_OPERATIONS = {"create": "insert", "update": "update", "upsert": "upsert"}


@dataclass
class PushResult:
    """What a push of one object did (or, in a dry run, would do)."""

    integration_id: str
    object_type: str
    dry_run: bool = False
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("created", "updated", "unchanged", "skipped", "rejected"), 0))
    api_calls: int = 0
    write_calls: int = 0
    duration_seconds: float = 0.0

    @property
    def rejection_rate(self) -> float:
        return rejection_rate(self.counts)


Report = Callable[[str, RowPlan], None]
"""Called with (object, plan) for every planned row of a dry run."""


class PushRun:
    """What every write-back push does around its own matching and writing: per chunk, the rows whose content
    Salesforce has not accepted yet are planned and then counted (a dry run) or written; at the end the result gets
    its API calls and duration, and the sync log its counts."""

    def __init__(self, store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig, name: str, *,
                 full: bool = False, dry_run: bool = False, run_id: str | None = None, report: Report | None = None,
                 confirm: Callable[[], None] | None = None) -> None:
        self.store, self.client, self.integration, self.name = store, client, integration, name
        self.full, self.dry_run, self.run_id, self.report, self.confirm = full, dry_run, run_id, report, confirm
        self.result = PushResult(integration.id, name, dry_run=dry_run)
        self._started, self._calls_before = time.monotonic(), client.api_calls

    def send(self, hashes: Mapping[str, str], plan: Callable[[list[str]], list[Any]],
             write: Callable[[list[Any], Mapping[str, str], str | None], list[RowOutcome]],
             reported_as: Callable[[Any], str] | None = None) -> None:
        """Plan the rows of `hashes` (source key -> content hash) that need sending, then count or write them."""
        keys = self.store.write_back.rows_to_push(self.integration.id, self.name, hashes, full=self.full)
        if not keys:
            return
        plans = plan(keys)
        if self.dry_run:
            for planned in plans:
                self.result.counts[planned_outcome(planned)] += 1
                if self.report is not None:
                    self.report(reported_as(planned) if reported_as else self.name, planned)
            return
        if self.confirm is not None:
            self.confirm()  # the lease is still ours: nothing is written after losing it
        for outcome in write(plans, hashes, self.run_id):
            self.result.counts[outcome.outcome] += 1

    def finish(self, write_calls: int) -> PushResult:
        result = self.result
        result.api_calls = self.client.api_calls - self._calls_before
        result.write_calls = write_calls
        result.duration_seconds = time.monotonic() - self._started
        if not self.dry_run and any(result.counts.values()):
            log_counts(self.store, self.integration, result, self.run_id)
        return result


def push_object(store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig,
                object_type: WriteBackObject, *, full: bool = False, dry_run: bool = False, run_id: str | None = None,
                report: Report | None = None, confirm: Callable[[], None] | None = None) -> PushResult:
    """Push one object's source; see the module docstring."""
    assert integration.write_back is not None
    settings = integration.write_back.objects[object_type]
    run = PushRun(store, client, integration, object_type, full=full, dry_run=dry_run, run_id=run_id, report=report,
                  confirm=confirm)
    pusher = _ObjectPush(store, client, integration, object_type, settings)
    fingerprint = settings.model_dump_json() + str(integration.write_back.contact_before_lead)
    for chunk in store.write_back.source_chunks(table=settings.table, query=settings.query, key=settings.key,
                                                chunk_rows=integration.write_back.chunk_size):
        rows = {str(row[settings.key]): row for row in chunk if row[settings.key] not in (None, "")}
        if len(rows) < len(chunk):
            log.warning("integration %r: %s write-back: %d source rows have no %s (or repeat one) and are not "
                        "pushed", integration.id, object_type, len(chunk) - len(rows), settings.key)
        hashes = {key: row_hash(row, settings.source_columns, fingerprint) for key, row in rows.items()}
        run.send(hashes, lambda keys: pusher.plan([rows[key] for key in keys]), pusher.write)
    return run.finish(pusher.write_calls)


def planned_outcome(plan: Any) -> str:
    """The outcome a dry run counts for a plan of any write-back (an upsert of a record not found creates it)."""
    if plan.action == "upsert":
        return "created" if getattr(plan, "salesforce_id", None) is None else "updated"
    return {"create": "created", "update": "updated", "unchanged": "unchanged", "skip": "skipped",
            "reject": "rejected"}[plan.action]


class _ObjectPush:
    """Matching and writing for one object's push; what it learns once (describe, default owner) it keeps."""

    def __init__(self, store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig,
                 object_type: WriteBackObject, settings: WriteBackObjectConfig) -> None:
        assert integration.write_back is not None
        self.store, self.client, self.integration = store, client, integration
        self.object_type, self.settings = object_type, settings
        self.contact_before_lead = integration.write_back.contact_before_lead
        self.writer = RecordWriter(client, bulk_threshold=integration.write_back.bulk_threshold,
                                   client_name=OWN_CLIENT_NAME)
        self.write_calls = 0
        self.order = settings.match_order(object_type)
        fields = ["CreatedDate", *(f.field for f in settings.fields)]
        fields += ["OwnerId"] if settings.owner else []
        fields += [settings.external_id_field] if settings.external_id_field else []
        fields += ["Email"] if object_type != "Account" else ["Website"]
        fields += ["IsConverted"] if object_type == "Lead" else []
        fields += ["AccountId"] if settings.account else []
        self.read_fields = list(dict.fromkeys(fields))
        self._restricted: dict[str, tuple[str, ...]] | None = None
        self._default_owner: tuple[str | None] | None = None

    # ---- planning -------------------------------------------------------------------------------

    def plan(self, rows: list[Mapping[str, Any]]) -> list[RowPlan]:
        settings = self.settings
        keys = [str(row[settings.key]) for row in rows]
        intents = self.store.write_back.intents(self.integration.id, self.object_type, keys)
        reconciling = reconcile_order(self.order, settings, self.object_type) if intents else self.order
        candidates = self._candidates(rows, keys, reconciling)
        owner_ids = self._owner_ids(rows)
        restricted = self._restricted_picklists()
        default_owner = self._default_owner_id()
        account_ids = self._account_ids(rows)
        plans = []
        for key, row in zip(keys, rows):
            plan = plan_row(self.object_type, settings, row, candidates,
                            order=reconciling if key in intents else self.order,
                            contact_before_lead=self.contact_before_lead, owner_ids=owner_ids,
                            default_owner_id=default_owner, restricted=restricted, create_intent=key in intents,
                            account_ids=account_ids)
            plans.append(plan)
        return plans

    def _find(self, object_name: str, field_name: str, values: Iterable[str], fields: Sequence[str]
              ) -> list[dict[str, Any]]:
        values = [v for v in dict.fromkeys(values) if v]
        return self.writer.find(object_name, field_name, values, fields) if values else []

    def _candidates(self, rows: list[Mapping[str, Any]], keys: list[str], order: Sequence[str]) -> Candidates:
        """The records each match step can find for these rows, one batched query per step, each step asking
        only for the rows the earlier steps did not find."""
        settings, name, fields = self.settings, self.object_type, self.read_fields
        unresolved = dict(zip(keys, rows))
        linked: dict[str, dict[str, Any]] = {}
        by_external_id: dict[str, dict[str, Any]] = {}
        by_email: dict[str, dict[str, Any]] = {}
        by_domain: dict[str, dict[str, Any]] = {}
        contacts: dict[str, dict[str, Any]] = {}
        emails = {key: email_key(row.get(settings.email_column)) for key, row in unresolved.items()} \
            if settings.email_column else {}
        if name == "Lead" and self.contact_before_lead and emails:
            for record in oldest_first(self._find("Contact", "Email", emails.values(), ["Email", "CreatedDate"])):
                contacts.setdefault(email_key(record["Email"]) or "", record)
            contacts.update({email: contact for email, contact in self._people_contacts(emails.values()).items()
                             if email not in contacts})
        for step in order:
            if not unresolved:
                break
            if step == "linked":
                links = self.store.write_back.links(self.integration.id, name, unresolved)
                records = {r["Id"]: r for r in self._find(name, "Id", links.values(), fields)}
                linked = {key: records[sf_id] for key, sf_id in links.items() if sf_id in records}
                found = linked
            elif step == "external_id":
                assert settings.external_id_field is not None
                records = self._find(name, settings.external_id_field, unresolved, fields)
                by_external_id = {r[settings.external_id_field]: r for r in records}
                found = by_external_id
            elif step == "email":
                wanted = [emails.get(key) for key in unresolved]
                for record in oldest_first(self._find(name, "Email", wanted, fields)):
                    if not is_true(record.get("IsConverted")):
                        by_email.setdefault(email_key(record["Email"]) or "", record)
                found = {key: by_email[emails[key]] for key in unresolved if emails.get(key) in by_email}
            else:
                by_domain.update(self._accounts_by_domain(unresolved.values()))
                found = {key: by_domain[d] for key, row in unresolved.items()
                         if (d := self._domain(row)) in by_domain}
            for key in found:
                unresolved.pop(key, None)
        return Candidates(linked=linked, by_external_id=by_external_id, by_email=by_email,
                          contacts_by_email=contacts, by_domain=by_domain)

    def _people_contacts(self, emails: Iterable[str | None]) -> dict[str, dict[str, Any]]:
        """Contacts of this org that the people identity joins to an email's person although their own email
        differs (a Lead converted into an existing Contact, a CampaignMember's links): the person is a Contact."""
        people = self.store.people.by_email(self.integration.project, [e for e in emails if e])
        return {email_key(email) or "": {"Id": person.contacts[self.integration.id][0]}
                for email, person in people.items() if person.contacts.get(self.integration.id)}

    def _domain(self, row: Mapping[str, Any]) -> str | None:
        column = self.settings.website_column
        return website_domain(row.get(column), keep_subdomains=not self.settings.match_subdomains) if column else None

    def _accounts_by_domain(self, rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Accounts whose Website normalises to a row's domain (Salesforce stores websites as typed, so the
        writer's LIKE candidates are normalised and picked here)."""
        domains = {d for row in rows if (d := self._domain(row))}
        found: dict[str, dict[str, Any]] = {}
        candidates = self.writer.find_by_domain("Account", sorted(domains), ["CreatedDate", *self.read_fields]) \
            if domains else []
        for record in oldest_first(candidates):
            domain = website_domain(record.get("Website"), keep_subdomains=not self.settings.match_subdomains)
            if domain in domains:
                found.setdefault(domain, record)
        return found

    def _account_ids(self, rows: list[Mapping[str, Any]]) -> dict[str, str]:
        """Company key -> the Account the Account write-back linked it to (that push runs before the Contacts')."""
        link = self.settings.account
        if link is None:
            return {}
        companies = {str(row[link.column]) for row in rows if not is_empty(row.get(link.column))}
        return self.store.write_back.links(self.integration.id, "Account", companies) if companies else {}

    def _owner_ids(self, rows: list[Mapping[str, Any]]) -> dict[str, str]:
        owner = self.settings.owner
        if owner is None or owner.column is None:
            return {}
        emails = [email_key(row.get(owner.column)) for row in rows]
        return _active_users(self._find("User", "Email", [e for e in emails if e], ["Email", "IsActive"]))

    def _default_owner_id(self) -> str | None:
        owner = self.settings.owner
        if owner is None or owner.default_email is None:
            return None
        if self._default_owner is None:
            users = _active_users(self._find("User", "Email", [owner.default_email], ["Email", "IsActive"]))
            default = users.get(email_key(owner.default_email) or "")
            if default is None:
                log.warning("integration %r: %s write-back: default owner %s is no active user; the connecting "
                            "user owns new records", self.integration.id, self.object_type, owner.default_email)
            self._default_owner = (default,)
        return self._default_owner[0]

    def _restricted_picklists(self) -> dict[str, tuple[str, ...]]:
        if self._restricted is None:
            self._restricted = restricted_picklists(self.client.describe(self.object_type))
        return self._restricted

    # ---- writing --------------------------------------------------------------------------------

    def write(self, plans: list[RowPlan], hashes: Mapping[str, str], run_id: str | None) -> list[RowOutcome]:
        """Send the plans' writes (creates after their intents are committed) and store every row's outcome."""
        store, name = self.store.write_back, self.object_type
        groups: dict[str, list[RowPlan]] = {}
        for plan in plans:
            groups.setdefault(plan.action, []).append(plan)
        writes = sum(math.ceil(len(groups.get(action, ())) / COLLECTION_SIZE) for action in _OPERATIONS)
        if writes:
            require_budget(self.client, self.integration, writes, f"write-back of {name}")
        creates = [plan.key for plan in groups.get("create", ())]
        store.record_intents(self.integration.id, name, creates, run_id)
        outcomes = []
        for plan in groups.get("unchanged", ()):
            outcomes.append(RowOutcome(plan.key, "unchanged", hashes[plan.key], plan.salesforce_id))
        for plan in groups.get("skip", ()):
            outcomes.append(RowOutcome(plan.key, "skipped", hashes[plan.key], plan.salesforce_id,
                                       message=plan.message))
        for plan in groups.get("reject", ()):
            outcomes.append(RowOutcome(plan.key, "rejected", hashes[plan.key], plan.salesforce_id, plan.status_code,
                                       plan.message, plan.fields, found_before_sending=True))
        for action, operation in _OPERATIONS.items():
            batch = groups.get(action, [])
            if not batch:
                continue
            before = self.writer.api_calls
            results = self.writer.write(name, operation, [plan.values for plan in batch],  # type: ignore[arg-type]
                                        external_id_field=self.settings.external_id_field)
            self.write_calls += self.writer.api_calls - before
            outcomes += [written_outcome(plan, result, hashes[plan.key]) for plan, result in zip(batch, results)]
        store.record_outcomes(self.integration.id, name, outcomes, run_id)
        return outcomes


def written_outcome(plan: RowPlan, result: RecordResult, content: str) -> RowOutcome:
    if result.error is None:
        outcome = _WRITTEN.get(plan.action) or ("created" if result.created else "updated")
        return RowOutcome(plan.key, outcome, content, result.salesforce_id or plan.salesforce_id,
                          attempts=result.attempts)
    error = result.error
    message = error.message
    if error.duplicate_ids:
        message += f" (matching records: {', '.join(error.duplicate_ids)})"
    # A create whose answer was lost may exist: it is not re-sent in this push, but the next one matches it
    # through its kept intent (record_outcomes keeps intents of retryable rows) and then creates only if needed.
    retryable = error.retryable or error.status_code == OUTCOME_UNKNOWN
    return RowOutcome(plan.key, "rejected", content, plan.salesforce_id, error.status_code, message, error.fields,
                      retryable=retryable, attempts=result.attempts)


def oldest_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """When several records match, the first created one wins (then the lowest Id): the same on every push."""
    return sorted(records, key=lambda r: (r.get("CreatedDate") or "", r["Id"]))


def _active_users(users: list[dict[str, Any]]) -> dict[str, str]:
    return {email_key(u["Email"]) or "": u["Id"] for u in oldest_first(users) if u.get("IsActive") != "false"}


def log_counts(store: AudienceStore, integration: IntegrationConfig, result: PushResult, run_id: str | None) -> None:
    details = {"write_back": True, **result.counts, "api_calls": result.api_calls}
    for event, count in ((SyncEvent.RECORDS_CREATED, result.counts["created"]),
                         (SyncEvent.RECORDS_UPDATED, result.counts["updated"]),
                         (SyncEvent.RECORDS_REJECTED, result.counts["rejected"])):
        store.log_event(integration.project, integration.id, event, object_type=result.object_type, count=count,
                        duration_seconds=result.duration_seconds, run_id=run_id,
                        message=f"write-back of {result.object_type}", details=details)
