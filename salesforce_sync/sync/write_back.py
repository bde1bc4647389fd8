"""What a write-back sends, decided without I/O: a source row's content hash (what changed since the last push),
website domains (how Accounts match), the record a row matches in the configured order, and the values each
field's mode lets through against the record's current ones (picklist maps, owners, restricted picklists)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

from salesforce_sync.config.models import WriteBackField, WriteBackObject, WriteBackObjectConfig

Action = Literal["create", "update", "upsert", "unchanged", "skip", "reject"]
#: Outcome code of a value a restricted picklist would refuse, found by us before sending (Salesforce's own
#: code for the same refusal is INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST).
PRECHECK_RESTRICTED_PICKLIST = "PRECHECK_INVALID_FOR_RESTRICTED_PICKLIST"
#: A create a killed push may have made that no match query can find (no email, website or external ID).
UNRECONCILED_CREATE = "UNRECONCILED_CREATE_INTENT"
#: Suffixes under which a company's domain has three labels (acme.co.uk), without a public-suffix list.
TWO_LABEL_SUFFIXES = frozenset({
    "co.uk", "org.uk", "ac.uk", "gov.uk", "com.au", "net.au", "org.au", "co.nz", "co.jp", "ne.jp", "co.in",
    "com.br", "com.mx", "com.cn", "com.tr", "co.za", "com.sg", "com.hk", "co.kr", "com.ar",
})


def row_hash(row: Mapping[str, Any], columns: Sequence[str], settings: str = "") -> str:
    """A fingerprint of a source row's content over `columns` and of the `settings` it is written with: equal
    exactly when nothing pushed changed (so a changed mapping sends every row again)."""
    payload = json.dumps([settings, *(sendable(row.get(column)) for column in columns)], default=str,
                         ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def sendable(value: Any) -> Any:
    """A database value as JSON Salesforce accepts: numbers, text, booleans, ISO dates; None stays None."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN from a numeric column: no value
        return None
    return value


def website_domain(website: Any, *, keep_subdomains: bool = False) -> str | None:
    """`https://www.acme.com/about` -> `acme.com`: host without scheme, port, path or `www.`; without
    `keep_subdomains` also without subdomains (`eu.acme.co.uk` -> `acme.co.uk`). None when there is no host."""
    if not isinstance(website, str) or not website.strip():
        return None
    text = website.strip().lower()
    try:
        host = urlsplit(text if "://" in text else f"//{text}").hostname
    except ValueError:
        return None
    if not host or "." not in host:
        return None
    host = host.rstrip(".").removeprefix("www.")
    if keep_subdomains:
        return host
    labels = host.split(".")
    size = 3 if ".".join(labels[-2:]) in TWO_LABEL_SUFFIXES else 2
    return ".".join(labels[-size:])


def email_key(email: Any) -> str | None:
    """An email as matching compares it (Salesforce matches emails case-insensitively)."""
    return email.strip().casefold() if isinstance(email, str) and email.strip() else None


def is_true(value: Any) -> bool:
    """A checkbox value as a query returns it: JSON true (REST), or "true" (text)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_empty(value: Any) -> bool:
    return value is None or value == ""


def same_value(source: Any, current: Any) -> bool:
    """Whether Salesforce already holds the source value; Salesforce's values arrive as text ("85.0", "true")."""
    if is_empty(source) or is_empty(current):
        return is_empty(source) and is_empty(current)
    if isinstance(source, bool):
        return str(current).lower() == str(source).lower()
    if isinstance(source, (int, float, Decimal)):
        try:
            return float(current) == float(source)
        except (TypeError, ValueError):
            return False
    return str(sendable(source)) == str(current)


def mapped_value(mapping: WriteBackField, value: Any) -> Any:
    """The source value a field receives: through its `value_map` (unmapped values pass unchanged)."""
    value = sendable(value)
    if mapping.value_map and value is not None and str(value) in mapping.value_map:
        return mapping.value_map[str(value)]
    return value


def field_value(mode: str, value: Any, current: Mapping[str, Any] | None, field_name: str, *,
                send_nulls: bool = False) -> tuple[bool, Any]:
    """(send?, value) for one field: dont_sync never; a null only with send_nulls; fill only while the record's
    value is empty; overwrite when it differs. A new record (`current` None) takes every value sent."""
    if mode == "dont_sync" or (value is None and not send_nulls):
        return False, None
    if current is None:
        return value is not None, value
    held = current.get(field_name)
    if mode == "fill" and not is_empty(held):
        return False, None
    return not same_value(value, held), value


def field_changes(fields: Sequence[WriteBackField], row: Mapping[str, Any],
                  current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The values to send for a row: all of a new record's, only what each mode lets through for an existing one."""
    changes: dict[str, Any] = {}
    for mapping in fields:
        send, value = field_value(mapping.mode, mapped_value(mapping, row.get(mapping.column)), current,
                                  mapping.field, send_nulls=mapping.send_nulls)
        if send:
            changes[mapping.field] = value
    return changes


def restricted_picklists(describe: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Active values of each restricted picklist of an object's describe, by field name."""
    return {f["name"]: tuple(v["value"] for v in f.get("picklistValues") or () if v.get("active", True))
            for f in describe.get("fields", ()) if f.get("restrictedPicklist")}


def picklist_problems(values: Mapping[str, Any], restricted: Mapping[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    """(field, message) for every value a restricted picklist would refuse."""
    problems = []
    for name, value in values.items():
        allowed = restricted.get(name)
        if allowed is not None and value is not None and str(value) not in allowed:
            problems.append((name, f"found before sending: {name}: {value!r} is not a value of the restricted "
                                   f"picklist ({', '.join(allowed)})"))
    return problems


@dataclass(frozen=True)
class Candidates:
    """The Salesforce records a chunk's rows may match, as the match queries found them (text values)."""

    linked: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)       # source key -> linked record
    by_external_id: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # source key -> record
    by_email: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)     # email_key -> own-object record
    contacts_by_email: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # email_key -> Contact
    by_domain: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)    # website_domain -> Account


@dataclass(frozen=True)
class RowPlan:
    """What the push does with one source row, and why."""

    key: str
    action: Action
    salesforce_id: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    matched_by: str | None = None
    status_code: str | None = None
    message: str | None = None
    fields: tuple[str, ...] = ()


def reconcile_order(order: Sequence[str], settings: WriteBackObjectConfig, object_type: WriteBackObject) -> tuple[str, ...]:
    """The match order for a row a killed push may have created: every query that can find it, before creating."""
    extra = ["external_id"] if settings.external_id_field else []
    extra += ["domain"] if object_type == "Account" and settings.website_column else []
    extra += ["email"] if object_type != "Account" and settings.email_column else []
    return tuple(dict.fromkeys([*order, *extra]))


def plan_row(object_type: WriteBackObject, settings: WriteBackObjectConfig, row: Mapping[str, Any],
             candidates: Candidates, *, order: Sequence[str], contact_before_lead: bool,
             owner_ids: Mapping[str, str], default_owner_id: str | None,
             restricted: Mapping[str, tuple[str, ...]], create_intent: bool,
             account_ids: Mapping[str, str] | None = None) -> RowPlan:
    """Match the row (in `order`), then decide the write: an update or upsert of what changed, a create when
    nothing matched and creating is allowed, or why not."""
    key = str(row[settings.key])
    email = email_key(row.get(settings.email_column)) if settings.email_column else None
    domain = (website_domain(row.get(settings.website_column), keep_subdomains=not settings.match_subdomains)
              if settings.website_column else None)
    if object_type == "Lead" and contact_before_lead and email and email in candidates.contacts_by_email:
        contact = candidates.contacts_by_email[email]
        return RowPlan(key, "skip", message=f"the person is Contact {contact['Id']} (contacts come before leads)")
    current, matched_by = None, None
    for step in order:
        found = {"linked": candidates.linked.get(key), "external_id": candidates.by_external_id.get(key),
                 "email": candidates.by_email.get(email) if email else None,
                 "domain": candidates.by_domain.get(domain) if domain else None}[step]
        if found is not None:
            current, matched_by = found, step
            break
    if current is not None and is_true(current.get("IsConverted")):
        return RowPlan(key, "skip", current["Id"], matched_by=matched_by,
                       message="the Lead was converted; its Contact takes the changes")
    ext_field = settings.external_id_field
    if current is None:
        if create_intent and not ext_field and not (email or domain):
            return RowPlan(key, "reject", status_code=UNRECONCILED_CREATE,
                           message="a killed push may have created this record and no email, website or external "
                                   "ID can find it; check Salesforce, then push with --full")
        if not settings.create:
            return RowPlan(key, "skip", message="no matching record and create is off")
        values = field_changes(settings.fields, row, None)
    else:
        values = field_changes(settings.fields, row, current)
    owner = _owner_value(settings, row, current, owner_ids, default_owner_id)
    if owner is not None:
        values["OwnerId"] = owner
    account = _account_value(settings, row, current, account_ids or {})
    if account is not None:
        values["AccountId"] = account
    problems = picklist_problems(values, restricted)
    if problems:
        return RowPlan(key, "reject", current["Id"] if current else None, values, matched_by,
                       PRECHECK_RESTRICTED_PICKLIST, "; ".join(m for _, m in problems), tuple(f for f, _ in problems))
    if current is None:
        if ext_field:
            return RowPlan(key, "upsert", values={**values, ext_field: key})
        return RowPlan(key, "create", values=values)
    record_id = current["Id"]
    if not values:
        return RowPlan(key, "unchanged", record_id, matched_by=matched_by)
    if ext_field and current.get(ext_field) == key:
        return RowPlan(key, "upsert", record_id, {**values, ext_field: key}, matched_by)
    if ext_field and is_empty(current.get(ext_field)):
        values[ext_field] = key  # claimed, so later pushes and reruns find it by external ID
    return RowPlan(key, "update", record_id, {**values, "Id": record_id}, matched_by)


def rejection_rate(counts: Mapping[str, int]) -> float:
    """The share of a write-back's rows whose latest outcome is rejected (0 when it has none)."""
    rows = sum(counts.values())
    return counts.get("rejected", 0) / rows if rows else 0.0


def _account_value(settings: WriteBackObjectConfig, row: Mapping[str, Any], current: Mapping[str, Any] | None,
                   account_ids: Mapping[str, str]) -> str | None:
    """The AccountId to send: the Account the row's company key is linked to; None sends nothing (no company,
    or its Account not pushed yet: the next push links it)."""
    link = settings.account
    company = row.get(link.column) if link else None
    wanted = account_ids.get(str(company)) if link and not is_empty(company) else None
    if link is None or wanted is None:
        return None
    send, value = field_value(link.mode, wanted, current, "AccountId")
    return value if send else None


def _owner_value(settings: WriteBackObjectConfig, row: Mapping[str, Any], current: Mapping[str, Any] | None,
                 owner_ids: Mapping[str, str], default_owner_id: str | None) -> str | None:
    """The OwnerId to send: the User with the row's owner email, else the default owner; None sends nothing
    (Salesforce then makes the connecting user the owner of a new record)."""
    owner = settings.owner
    if owner is None:
        return None
    email = email_key(row.get(owner.column)) if owner.column else None
    wanted = owner_ids.get(email) if email else None
    send, value = field_value(owner.mode, wanted or default_owner_id, current, "OwnerId")
    return value if send else None
