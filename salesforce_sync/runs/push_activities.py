"""One push of an integration's activities: its source's new and changed activities (that occurred since the
switch-on) become Tasks and Events on their people.

Per chunk of the source: activities whose content Salesforce has not accepted yet find their person (the Contact
or Lead write-back's link for the person key, Contacts first; then people by email; then Salesforce Contacts and
Leads by email), are planned (sync/activities.py) and upserted on the external ID (`Activity_Key__c`), so an
activity is one record however often it is sent. An upsert that may already have created its record (a killed
push left its intent) is looked up by external ID first, as fields set on create only may not be sent again.
Outcomes, snapshots, links, budget and sync-log events are the core write-back's (runs/push.py), kept under the
object name `Activity`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from salesforce_sync.config.models import (
    ACTIVITY,
    ACTIVITY_OBJECTS,
    OWN_CLIENT_NAME,
    IntegrationConfig,
    WriteBackActivities,
)
from salesforce_sync.runs.health import require_budget
from salesforce_sync.runs.push import PushResult, PushRun, Report, oldest_first, written_outcome
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.salesforce.writes import COLLECTION_SIZE, RecordWriter
from salesforce_sync.store import AudienceStore
from salesforce_sync.store.write_back import RowOutcome
from salesforce_sync.sync.activities import ActivityPlan, Who, activity_type, is_due, plan_activity
from salesforce_sync.sync.write_back import email_key, restricted_picklists, row_hash

log = logging.getLogger(__name__)


def push_activities(store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig, *,
                    objects: Sequence[str] = ACTIVITY_OBJECTS, full: bool = False, dry_run: bool = False,
                    run_id: str | None = None, report: Report | None = None,
                    confirm: Callable[[], None] | None = None) -> PushResult:
    """Push the activities written as `objects` (Task, Event); see the module docstring."""
    assert integration.write_back is not None and integration.write_back.activities is not None
    settings = integration.write_back.activities
    run = PushRun(store, client, integration, ACTIVITY, full=full, dry_run=dry_run, run_id=run_id, report=report,
                  confirm=confirm)
    since = settings.since or store.write_back.started_at(integration.id, ACTIVITY, record=not dry_run)
    pusher = _ActivityPush(store, client, integration, settings)
    fingerprint = settings.model_dump_json(exclude={"since"})
    earlier = 0
    for chunk in store.write_back.source_chunks(table=settings.table, query=settings.query, key=settings.key,
                                                chunk_rows=integration.write_back.chunk_size):
        rows = {str(row[settings.key]): row for row in chunk if row[settings.key] not in (None, "")}
        due = {key: row for key, row in rows.items() if is_due(settings, row, since)
               and _written_as(settings, row) in (*objects, None)}
        earlier += sum(1 for row in rows.values() if not is_due(settings, row, since))
        hashes = {key: row_hash(row, settings.source_columns, fingerprint) for key, row in due.items()}
        run.send(hashes, lambda keys: pusher.plan([due[key] for key in keys]), pusher.write,
                 reported_as=lambda plan: plan.salesforce_object or ACTIVITY)
    if earlier:
        log.info("integration %r: %d activities occurred before %s (write-back switched on) and are not sent",
                 integration.id, earlier, since.isoformat())
    return run.finish(pusher.write_calls)


def _written_as(settings: WriteBackActivities, row: Mapping[str, Any]) -> str | None:
    kind = activity_type(settings, row)
    return None if kind is None else kind.object


class _ActivityPush:
    """Finding people and owners and writing for one activities push; describes it learns once it keeps."""

    def __init__(self, store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig,
                 settings: WriteBackActivities) -> None:
        assert integration.write_back is not None
        self.store, self.client, self.integration, self.settings = store, client, integration, settings
        self.writer = RecordWriter(client, bulk_threshold=integration.write_back.bulk_threshold,
                                   client_name=OWN_CLIENT_NAME)
        self.write_calls = 0
        self._restricted: dict[str, dict[str, tuple[str, ...]]] | None = None
        self._default_owner: tuple[str | None] | None = None

    # ---- planning -------------------------------------------------------------------------------

    def plan(self, rows: list[Mapping[str, Any]]) -> list[ActivityPlan]:
        settings = self.settings
        keys = [str(row[settings.key]) for row in rows]
        records = self._records(keys)
        people = self._people(dict(zip(keys, rows)))
        owners = self._owner_ids(rows)
        default_owner = self._default_owner_id()
        restricted = self._restricted_picklists()
        plans = []
        for key, row in zip(keys, rows):
            owner_email = email_key(row.get(settings.owner_email_column)) if settings.owner_email_column else None
            plans.append(plan_activity(settings, row, people.get(key), record_id=records.get(key),
                                       owner_id=owners.get(owner_email or "") or default_owner,
                                       restricted=restricted))
        return plans

    def _find(self, object_name: str, field_name: str, values: Iterable[str], fields: Sequence[str]
              ) -> list[dict[str, Any]]:
        values = [v for v in dict.fromkeys(values) if v]
        return self.writer.find(object_name, field_name, values, fields) if values else []

    def _records(self, keys: list[str]) -> dict[str, str]:
        """The Task or Event each activity already is: its link, or for an upsert a killed push may have made
        (its intent kept), the record with its external ID."""
        records = self.store.write_back.links(self.integration.id, ACTIVITY, keys)
        pending = [key for key in self.store.write_back.intents(self.integration.id, ACTIVITY, keys)
                   if key not in records]
        external = self.settings.external_id_field
        for object_name in ACTIVITY_OBJECTS if pending else ():
            for record in self._find(object_name, external, pending, [external]):
                records[record[external]] = record["Id"]
        return records

    def _people(self, rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Who]:
        """Each activity's person, in order: the Contact, then Lead write-back's link of the person key; the
        person with the email (their Contact first); a Salesforce Contact, then a Lead not converted, with it."""
        settings, integration = self.settings, self.integration
        found: dict[str, Who] = {}
        if settings.person_key_column:
            person_keys = {key: str(row[settings.person_key_column]) for key, row in rows.items()
                           if row.get(settings.person_key_column) not in (None, "")}
            for object_type in ("Contact", "Lead"):
                links = self.store.write_back.links(integration.id, object_type, set(person_keys.values()))
                for key, person in person_keys.items():
                    if key not in found and person in links:
                        found[key] = Who(links[person], f"{object_type.lower()} link")
        if not settings.email_column:
            return found
        emails = {key: email for key, row in rows.items()
                  if key not in found and (email := email_key(row.get(settings.email_column)))}
        matches = self.store.people.by_email(integration.project, set(emails.values())) if emails else {}
        for key, email in emails.items():
            records = matches[email].salesforce_records(integration.id) if email in matches else ()
            if records:
                found[key] = Who(records[0][1], "people")
        wanted = {key: email for key, email in emails.items() if key not in found}
        for object_type in ("Contact", "Lead"):
            if not wanted:
                break
            fields = ["Email", "CreatedDate", *(["IsConverted"] if object_type == "Lead" else [])]
            by_email: dict[str, str] = {}
            for record in oldest_first(self._find(object_type, "Email", wanted.values(), fields)):
                if record.get("IsConverted") != "true":
                    by_email.setdefault(email_key(record["Email"]) or "", record["Id"])
            for key, email in list(wanted.items()):
                if email in by_email:
                    found[key] = Who(by_email[email], f"{object_type.lower()} email")
                    del wanted[key]
        return found

    def _owner_ids(self, rows: list[Mapping[str, Any]]) -> dict[str, str]:
        """The User of each owner email, active or not: an inactive owner is Salesforce's to refuse, so the
        rejection names it (INACTIVE_OWNER_OR_USER)."""
        column = self.settings.owner_email_column
        if column is None:
            return {}
        emails = [email for row in rows if (email := email_key(row.get(column)))]
        users = oldest_first(self._find("User", "Email", emails, ["Email", "CreatedDate"]))
        return {email_key(user["Email"]) or "": user["Id"] for user in reversed(users)}

    def _default_owner_id(self) -> str | None:
        email = self.settings.default_owner_email
        if email is None:
            return None
        if self._default_owner is None:
            users = oldest_first(self._find("User", "Email", [email], ["Email", "CreatedDate", "IsActive"]))
            active = [user["Id"] for user in users if user.get("IsActive") != "false"]
            if not active:
                log.warning("integration %r: activities write-back: default owner %s is no active user; the "
                            "connecting user owns activities without an owner", self.integration.id, email)
            self._default_owner = (active[0] if active else None,)
        return self._default_owner[0]

    def _restricted_picklists(self) -> dict[str, dict[str, tuple[str, ...]]]:
        if self._restricted is None:
            self._restricted = {name: restricted_picklists(self.client.describe(name)) for name in ACTIVITY_OBJECTS}
        return self._restricted

    # ---- writing --------------------------------------------------------------------------------

    def write(self, plans: list[ActivityPlan], hashes: Mapping[str, str], run_id: str | None) -> list[RowOutcome]:
        """Upsert the plans' Tasks and Events (after committing the intents of those not yet linked) and store
        every activity's outcome."""
        store = self.store.write_back
        upserts: dict[str, list[ActivityPlan]] = {}
        outcomes = []
        for plan in plans:
            if plan.action == "upsert":
                upserts.setdefault(plan.salesforce_object, []).append(plan)
            elif plan.action == "skip":  # the person may appear: tried again on the next push
                outcomes.append(RowOutcome(plan.key, "skipped", hashes[plan.key], plan.salesforce_id,
                                           message=plan.message, retryable=True))
            else:
                outcomes.append(RowOutcome(plan.key, "rejected", hashes[plan.key], plan.salesforce_id,
                                           plan.status_code, plan.message, plan.fields, found_before_sending=True))
        writes = sum(math.ceil(len(batch) / COLLECTION_SIZE) for batch in upserts.values())
        if writes:
            require_budget(self.client, self.integration, writes, "write-back of activities")
        store.record_intents(self.integration.id, ACTIVITY, [plan.key for batch in upserts.values()
                                                             for plan in batch if plan.salesforce_id is None], run_id)
        for object_name, batch in upserts.items():
            before = self.writer.api_calls
            results = self.writer.write(object_name, "upsert", [plan.values for plan in batch],
                                        external_id_field=self.settings.external_id_field)
            self.write_calls += self.writer.api_calls - before
            outcomes += [written_outcome(plan, result, hashes[plan.key]) for plan, result in zip(batch, results)]
        store.record_outcomes(self.integration.id, ACTIVITY, outcomes, run_id)
        return outcomes
