"""Sync rules and windows as SOQL text. Every user value becomes one escaped literal, never raw text."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation

from salesforce_sync.config.models import OBJECT_RULES, FieldMapping, ObjectType, RuleValue, SyncRule, SyncRules
from salesforce_sync.sync.errors import SyncRuleError
from salesforce_sync.sync.field_types import LIKE_TYPES, MULTIPICKLIST, NUMBER_TYPES, TEXT_TYPES

SYSTEM_FIELDS: tuple[str, ...] = ("Id", "IsDeleted", "LastModifiedDate")
CAMPAIGN_MEMBER_OPT_OUT_PATHS: tuple[str, ...] = OBJECT_RULES["CampaignMember"].opt_out

_STRING_ESCAPES = str.maketrans({
    "\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
})
_LIKE_ESCAPES = str.maketrans({
    "\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
    "%": "\\%", "_": "\\_",
})
_COMPARISONS = {"equals": "=", "not_equals": "!=", "greater_than": ">", "less_than": "<"}
_LIKE_PATTERNS = {"contains": "%{}%", "not_contains": "%{}%", "starts_with": "{}%", "ends_with": "%{}"}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def soql_string(value: str) -> str:
    """A quoted SOQL string literal: backslash, quotes and control characters escaped."""
    return "'" + value.translate(_STRING_ESCAPES) + "'"


def soql_like_pattern(value: str, pattern: str = "{}") -> str:
    """A quoted LIKE pattern; `%` and `_` in `value` match themselves, `pattern` adds the wildcards."""
    return "'" + pattern.format(value.translate(_LIKE_ESCAPES)) + "'"


def soql_datetime(moment: datetime) -> str:
    """`2024-01-02T03:04:05Z` (milliseconds only when present); naive datetimes are refused."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; SOQL bounds must be UTC-aware datetimes")
    utc = moment.astimezone(timezone.utc)
    millis = f".{utc.microsecond // 1000:03d}" if utc.microsecond else ""
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + millis + "Z"


def rules_to_where(
    sync_rules: SyncRules | None,
    field_types: Mapping[str, str],
    *,
    integration_id: str,
    object_type: ObjectType,
) -> str | None:
    """The WHERE condition of an object's sync rules, or None when every record syncs.

    `field_types` maps field paths (`Email`, `Account.Name`) to describe types; paths match
    case-insensitively and are written in the describe's spelling.
    """
    if sync_rules is None or not sync_rules.rules:
        return None
    canonical = {path.lower(): path for path in field_types}
    conditions = []
    for index, rule in enumerate(sync_rules.rules):
        where = f"integration '{integration_id}': {object_type}.sync_rules.rules[{index}]"
        path = canonical.get(rule.field.lower())
        if path is None:
            raise SyncRuleError(f"{where}: field '{rule.field}' does not exist on {object_type}")
        try:
            conditions.append(_condition(rule, path, field_types[path]))
        except ValueError as exc:
            raise SyncRuleError(f"{where}: {object_type}.{path} {rule.operator} {rule.value!r}: {exc}") from None
    return (" AND " if sync_rules.match == "all" else " OR ").join(conditions)


def _condition(rule: SyncRule, path: str, salesforce_type: str) -> str:
    operator = rule.operator
    if operator == "is_set":
        return f"{path} != null"
    if operator == "is_not_set":
        return f"{path} = null"
    if operator in _LIKE_PATTERNS:
        text = _text(rule.value)
        if salesforce_type == MULTIPICKLIST and operator in ("contains", "not_contains"):
            keyword = "INCLUDES" if operator == "contains" else "EXCLUDES"
            return f"{path} {keyword} ({soql_string(text)})"
        if salesforce_type not in LIKE_TYPES:
            raise ValueError(f"operator '{operator}' needs a text field, but the field is {salesforce_type}")
        like = f"{path} LIKE {soql_like_pattern(text, _LIKE_PATTERNS[operator])}"
        return f"(NOT {like})" if operator == "not_contains" else like
    if operator in ("greater_than", "less_than") and salesforce_type in ("boolean", MULTIPICKLIST):
        raise ValueError(f"operator '{operator}' cannot compare a {salesforce_type} field")
    return f"{path} {_COMPARISONS[operator]} {_literal(rule.value, salesforce_type)}"


def _literal(value: RuleValue, salesforce_type: str) -> str:
    """The SOQL literal of `value` for a field of `salesforce_type`, validated against that type."""
    if salesforce_type in TEXT_TYPES or salesforce_type == MULTIPICKLIST:
        return soql_string(_text(value))
    if salesforce_type in NUMBER_TYPES:
        return _number(value)
    if salesforce_type == "boolean":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower()
        raise ValueError("a boolean field needs true or false")
    if salesforce_type == "date":
        return _date(value).isoformat()
    if salesforce_type == "datetime":
        return soql_datetime(_datetime(value))
    raise ValueError(f"fields of type {salesforce_type} cannot be used in sync rules")


def _text(value: RuleValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _number(value: RuleValue) -> str:
    if isinstance(value, bool) or isinstance(value, (date, datetime)):
        raise ValueError("a number field needs a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("a number field needs a finite number")
    text = str(value).strip()
    if not _NUMBER.fullmatch(text):
        raise ValueError("a number field needs a number")
    try:
        return format(Decimal(text), "f")
    except InvalidOperation:
        raise ValueError("a number field needs a number") from None


def _date(value: RuleValue) -> date:
    if isinstance(value, datetime):
        raise ValueError("a date field needs a date (2024-01-02), not a datetime")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError("a date field needs a date like 2024-01-02")


def _datetime(value: RuleValue) -> datetime:
    """Dates mean midnight UTC; datetimes without a zone are UTC."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if _ISO_DATE.fullmatch(text) else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("a datetime field needs a datetime like 2024-01-02T03:04:05Z") from None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    raise ValueError("a datetime field needs a datetime like 2024-01-02T03:04:05Z")


def select_fields(
    object_type: ObjectType, mappings: Iterable[FieldMapping], cursor_field: str = "LastModifiedDate"
) -> tuple[str, ...]:
    """SELECT list: Id, IsDeleted, LastModifiedDate, the cursor, every mapped path, CampaignMember opt-outs.

    Deduplicated case-insensitively, first spelling kept, in that order.
    """
    paths: list[str] = [*SYSTEM_FIELDS, cursor_field]
    for mapping in mappings:
        paths.extend(mapping.fields)
    if object_type == "CampaignMember":
        paths.extend(CAMPAIGN_MEMBER_OPT_OUT_PATHS)
    seen: set[str] = set()
    selected: list[str] = []
    for path in paths:
        if path.lower() not in seen:
            seen.add(path.lower())
            selected.append(path)
    return tuple(selected)


def build_window_soql(
    object_type: str,
    fields: Sequence[str],
    rules_where: str | None,
    start: datetime | None,
    end: datetime | None,
    *,
    cursor_field: str = "LastModifiedDate",
    related: Sequence[str] = (),
) -> str:
    """`SELECT <fields> FROM <object> WHERE cursor >= start AND cursor < end AND (rules)`; None bounds are left out.

    `related` names parent relationships (CampaignMember's Lead and Contact) whose own change inside the
    window also selects a record: `(cursor >= start OR (Lead.cursor >= start AND Lead.cursor < end) ...)`.
    """
    if not fields:
        raise ValueError(f"no fields to select from {object_type}")
    return f"SELECT {', '.join(fields)} FROM {_object(object_type)}" + _window_where(
        rules_where, start, end, cursor_field, related
    )


def build_count_soql(
    object_type: str,
    rules_where: str | None,
    start: datetime | None,
    end: datetime | None,
    *,
    cursor_field: str = "LastModifiedDate",
    related: Sequence[str] = (),
) -> str:
    """`SELECT COUNT() ...` over the same window and rules, to pick REST or Bulk for the window."""
    return f"SELECT COUNT() FROM {_object(object_type)}" + _window_where(rules_where, start, end, cursor_field, related)


def _object(object_type: str) -> str:
    if not _IDENTIFIER.fullmatch(object_type):
        raise ValueError(f"{object_type!r} is not an sObject API name")
    return object_type


def _window_where(
    rules_where: str | None, start: datetime | None, end: datetime | None, cursor_field: str, related: Sequence[str]
) -> str:
    """` WHERE <bounds> AND (<rules>)`, or "" when there is nothing to filter on."""
    if start is not None and end is not None and start >= end:
        raise ValueError(f"window start {start.isoformat()} is not before its end {end.isoformat()}")
    conditions = []
    if start is not None:
        since = [f"{cursor_field} >= {soql_datetime(start)}"]
        for parent in related:
            parent_cursor = f"{_object(parent)}.{cursor_field}"
            bounds = [f"{parent_cursor} >= {soql_datetime(start)}"]
            bounds += [] if end is None else [f"{parent_cursor} < {soql_datetime(end)}"]
            since.append("(" + " AND ".join(bounds) + ")")
        conditions.append(since[0] if len(since) == 1 else "(" + " OR ".join(since) + ")")
    if end is not None:
        conditions.append(f"{cursor_field} < {soql_datetime(end)}")
    if rules_where:
        conditions.append(f"({rules_where})")
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def order_by_cursor(cursor_field: str = "LastModifiedDate") -> str:
    """` ORDER BY <cursor>, Id`: a REST window read in this order can resume after any record it has read."""
    return f" ORDER BY {cursor_field}, Id"


def after_record_where(stamp: datetime, record_id: str, *, cursor_field: str = "LastModifiedDate") -> str:
    """The records after (stamp, Id) in `order_by_cursor` order: where a query whose locator expired resumes."""
    at = soql_datetime(stamp)
    return f"({cursor_field} > {at} OR ({cursor_field} = {at} AND Id > {soql_string(record_id)}))"
