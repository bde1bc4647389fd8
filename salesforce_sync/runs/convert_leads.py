"""Lead conversion push: the Lead of each source row whose stage reached the configured value is converted
(SOAP convertLead), and the row's key is linked to the Contact it became.

Per chunk of the Lead source's rows at the stage (and not converted by an earlier push): the Lead is found by
the key's Lead link, else by email; the converted status comes from the configuration or the org's
LeadStatus; the target Account and Contact are matched (an existing Contact with the email, else an Account
with the domain) or left to the conversion to create. A Lead found converted already is never converted
again: its Contact is linked. So a push killed after Salesforce converted leads converts none twice on the
rerun, and a conversion whose answer was lost, or refused because the Lead is converted, is settled by
re-reading the Lead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

from salesforce_sync.config.models import OWN_CLIENT_NAME, IntegrationConfig, WriteBackConvert, WriteBackObjectConfig
from salesforce_sync.runs.health import require_budget
from salesforce_sync.runs.push import PushResult, PushRun, Report, oldest_first
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.salesforce.convert import LEADS_PER_CALL, ConvertResult, LeadConvert, LeadConverter
from salesforce_sync.salesforce.writes import OUTCOME_UNKNOWN, RecordWriter
from salesforce_sync.store import AudienceStore
from salesforce_sync.store.write_back import RowOutcome
from salesforce_sync.sync.lead_conversion import at_stage, lead_domain, plan_conversion
from salesforce_sync.sync.write_back import RowPlan, email_key, is_true, row_hash, website_domain

OBJECT = "LeadConversion"
LEAD_FIELDS = ("Email", "Website", "IsConverted", "ConvertedContactId", "ConvertedAccountId", "CreatedDate")
#: Refusals after which a re-read of the Lead tells what happened: it may be converted (by us or someone else).
_RE_READ = frozenset({OUTCOME_UNKNOWN, "CANNOT_UPDATE_CONVERTED_LEAD"})


def convert_leads(store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig, *,
                  full: bool = False, dry_run: bool = False, run_id: str | None = None,
                  report: Report | None = None, confirm: Callable[[], None] | None = None) -> PushResult:
    """Convert the Leads whose rows reached their stage; see the module docstring."""
    assert integration.write_back is not None
    settings = integration.write_back.objects["Lead"]
    assert settings.convert is not None
    run = PushRun(store, client, integration, OBJECT, full=full, dry_run=dry_run, run_id=run_id, report=report,
                  confirm=confirm)
    push = _Conversions(store, client, integration, settings, settings.convert)
    columns = tuple(dict.fromkeys(c for c in (settings.key, settings.email_column, settings.convert.stage_column)
                                  if c))
    fingerprint = settings.convert.model_dump_json()
    for chunk in store.write_back.source_chunks(table=settings.table, query=settings.query, key=settings.key,
                                                chunk_rows=integration.write_back.chunk_size):
        rows = {str(row[settings.key]): row for row in chunk
                if row[settings.key] not in (None, "") and at_stage(settings.convert, row)}
        hashes = {key: row_hash(row, columns, fingerprint) for key, row in rows.items()}
        run.send(hashes, lambda keys: push.plan({key: rows[key] for key in keys}), push.write)
    return run.finish(push.converter.api_calls)


class _Conversions:
    def __init__(self, store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig,
                 settings: WriteBackObjectConfig, convert: WriteBackConvert) -> None:
        assert integration.write_back is not None
        self.store, self.client, self.integration = store, client, integration
        self.settings, self.convert = settings, convert
        self.writer = RecordWriter(client, client_name=OWN_CLIENT_NAME)
        self.converter = LeadConverter(client, client_name=OWN_CLIENT_NAME)

    @cached_property
    def allowed(self) -> tuple[str, ...]:
        """The org's converted Lead statuses, in their order (read once, when a row needs them)."""
        statuses = self.writer.find("LeadStatus", "IsConverted", [True], ["MasterLabel", "SortOrder"])
        return tuple(s["MasterLabel"] for s in sorted(statuses, key=lambda s: (float(s["SortOrder"] or 0), s["Id"])))

    @property
    def converted_status(self) -> str:
        return self.convert.converted_status or (self.allowed[0] if self.allowed else "")

    # ---- planning -------------------------------------------------------------------------------

    def plan(self, rows: Mapping[str, Mapping[str, Any]]) -> list[RowPlan]:
        leads = self._leads(rows)
        contacts: dict[str, dict[str, Any]] = {}
        accounts: dict[str, dict[str, Any]] = {}
        open_leads = [lead for lead in leads.values() if not is_true(lead.get("IsConverted"))]
        if self.convert.account == "match_by_domain" and open_leads:
            for record in oldest_first(self._find("Contact", "Email", [email_key(lead.get("Email")) or ""
                                                                        for lead in open_leads],
                                                   ["Email", "AccountId", "CreatedDate"], where="AccountId != null")):
                contacts.setdefault(email_key(record["Email"]) or "", record)
            domains = sorted({d for lead in open_leads if (d := lead_domain(lead))})
            for account in oldest_first(self.writer.find_by_domain("Account", domains, ["Website", "CreatedDate"])
                                         if domains else []):
                domain = website_domain(account.get("Website"))
                if domain in domains:
                    accounts.setdefault(domain, account)
        return [plan_conversion(self.convert, key, leads.get(key), self.converted_status, self.allowed, contacts,
                                accounts) for key in rows]

    def _leads(self, rows: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Each row's Lead: the key's link, else the oldest unconverted Lead with its email, else a converted
        one (which is then only linked)."""
        links = self.store.write_back.links(self.integration.id, "Lead", rows)
        by_id = {r["Id"]: r for r in self._find("Lead", "Id", links.values(), LEAD_FIELDS)}
        leads = {key: by_id[i] for key, i in links.items() if i in by_id}
        column = self.settings.email_column
        emails = {key: e for key, row in rows.items()
                  if key not in leads and column and (e := email_key(row.get(column)))}
        by_email: dict[str, dict[str, Any]] = {}
        found = sorted(self._find("Lead", "Email", emails.values(), LEAD_FIELDS),
                       key=lambda r: (is_true(r.get("IsConverted")), r.get("CreatedDate") or "", r["Id"]))
        for record in found:
            by_email.setdefault(email_key(record["Email"]) or "", record)
        leads.update({key: by_email[email] for key, email in emails.items() if email in by_email})
        return leads

    def _find(self, object_name: str, field_name: str, values: Iterable[str], fields: Sequence[str], *,
              where: str = "") -> list[dict[str, Any]]:
        values = [v for v in dict.fromkeys(values) if v]
        return self.writer.find(object_name, field_name, values, fields, where=where) if values else []

    # ---- converting -----------------------------------------------------------------------------

    def write(self, plans: list[RowPlan], hashes: Mapping[str, str], run_id: str | None) -> list[RowOutcome]:
        """Convert the planned Leads, link each row's key to its Contact, and store every row's outcome."""
        converting = [p for p in plans if p.action == "update"]
        if converting:
            require_budget(self.client, self.integration, math.ceil(len(converting) / LEADS_PER_CALL),
                           f"write-back of {OBJECT}")
        outcomes = [RowOutcome(p.key, "unchanged", hashes[p.key], p.salesforce_id) for p in plans
                    if p.action == "unchanged"]
        outcomes += [RowOutcome(p.key, "skipped", hashes[p.key], message=p.message) for p in plans
                     if p.action == "skip"]
        outcomes += [RowOutcome(p.key, "rejected", hashes[p.key], p.salesforce_id, p.status_code, p.message,
                                p.fields, found_before_sending=True) for p in plans if p.action == "reject"]
        results = self.converter.convert([LeadConvert(
            p.values["leadId"], p.values["convertedStatus"], p.values.get("accountId"), p.values.get("contactId"),
            self.convert.create_opportunity) for p in converting])
        unsure = [r.lead_id for r in results if r.error is not None and r.error.status_code in _RE_READ]
        now = {r["Id"]: r for r in self._find("Lead", "Id", unsure, LEAD_FIELDS)}
        for plan, converted in zip(converting, results):
            outcomes.append(_converted(plan, converted, now.get(converted.lead_id), hashes[plan.key]))
        contacts = {o.source_key: o.salesforce_id for o in outcomes
                    if o.outcome in ("updated", "unchanged") and o.salesforce_id}
        self.store.write_back.record_links(self.integration.id, "Contact", contacts)
        self.store.write_back.record_outcomes(self.integration.id, OBJECT, outcomes, run_id)
        return outcomes


def _converted(plan: RowPlan, result: ConvertResult, lead: Mapping[str, Any] | None, content: str) -> RowOutcome:
    """A conversion's outcome: `updated` with the new Contact; a refused or unanswered one whose Lead a re-read
    finds converted is settled (`updated` if it was ours to know, `unchanged` if someone else converted it)."""
    if result.error is None:
        return RowOutcome(plan.key, "updated", content, result.contact_id, attempts=1,
                          message=f"converted into Account {result.account_id}, Contact {result.contact_id}"
                                  + (f", Opportunity {result.opportunity_id}" if result.opportunity_id else ""))
    error = result.error
    if lead is not None and is_true(lead.get("IsConverted")):
        outcome = "updated" if error.status_code == OUTCOME_UNKNOWN else "unchanged"
        return RowOutcome(plan.key, outcome, content, lead.get("ConvertedContactId"), attempts=1)
    return RowOutcome(plan.key, "rejected", content, plan.salesforce_id, error.status_code, error.message,
                      error.fields, retryable=error.retryable or error.status_code == OUTCOME_UNKNOWN, attempts=1)
