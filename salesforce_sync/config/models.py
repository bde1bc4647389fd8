"""Typed model of `integrations.yaml`: which Salesforce orgs feed which project, and how.

The models only validate; they never read files or environment variables (see `loader` and
`secrets`). Integrations that are still being set up (no connection, objects, rules or mappings yet)
load fine: `status.integration_status` reports them as Incomplete instead of failing the whole file.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Self, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from salesforce_sync.config.errors import FieldProblem
from salesforce_sync.config.schedule import (
    MANUAL,
    Frequency,
    frequency_problem,
    partition_cron,
    window_minutes,
)

ObjectType = Literal["Lead", "Contact", "CampaignMember", "Account", "Opportunity", "Campaign"]
OBJECT_TYPES: tuple[ObjectType, ...] = get_args(ObjectType)

Operator = Literal[
    "equals", "not_equals", "contains", "not_contains", "starts_with", "ends_with",
    "greater_than", "less_than", "is_set", "is_not_set",
]
OPERATORS: tuple[Operator, ...] = get_args(Operator)
VALUELESS_OPERATORS: frozenset[str] = frozenset({"is_set", "is_not_set"})

PropertyType = Literal["string", "number", "boolean", "date", "array"]
PROPERTY_TYPES: tuple[PropertyType, ...] = get_args(PropertyType)

AuthMethod = Literal["refresh_token", "jwt_bearer", "client_credentials", "password"]
HistoryMode = Literal["historical_and_forward", "historical_only", "forward_only"]
CursorField = Literal["LastModifiedDate", "SystemModstamp"]
EnvironmentKind = Literal["production", "sandbox", "my_domain", "url", "emulator"]

PRODUCTION_LOGIN_URL = "https://login.salesforce.com"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"

OPT_OUT_PROPERTY = "unsubscribed"
#: The audience store's own person columns and the property type each must be fed with.
STORE_COLUMN_TYPES: dict[str, PropertyType] = {
    "email": "string", "first_name": "string", "last_name": "string", "phone": "string",
    OPT_OUT_PROPERTY: "boolean",
}
#: Store-chunk columns the sync fills itself; no mapping may target them.
RESERVED_PROPERTIES: frozenset[str] = frozenset(
    {"external_id", "salesforce_id", "object_type", "properties", "deleted", "sf_modified_at"}
)

_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,39}")
_FIELD_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*){0,4}")
_PROPERTY_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_ENV_VAR_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+")
_MY_DOMAIN_SUFFIX = ".my.salesforce.com"


def _identifier(value: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid id: use 1-40 lowercase letters, digits and underscores, "
            "starting with a letter (it becomes part of external ids)"
        )
    return value


def _field_path(value: str) -> str:
    if not _FIELD_PATH.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Salesforce field API name or relationship path (e.g. Email, Account.Name)"
        )
    return value


def _property_name(value: str) -> str:
    if not _PROPERTY_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid property name: use lowercase letters, digits and underscores, "
            "starting with a letter"
        )
    if value in RESERVED_PROPERTIES:
        raise ValueError(f"{value!r} is filled by the sync itself and cannot be a mapping target")
    return value


def _env_var_name(value: str) -> str:
    # The value may be a pasted secret: never echo it back.
    if not _ENV_VAR_NAME.fullmatch(value):
        raise ValueError(
            "does not look like an environment variable name (UPPER_SNAKE_CASE); give the NAME of the "
            "variable that holds the secret, never the secret itself (value not shown)"
        )
    return value


def _owner(value: str) -> str:
    """Dagster accepts an owner as an email address or a `team:` name."""
    team = value.removeprefix("team:")
    if (value.startswith("team:") and team and not team.isspace()) or re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        return value
    raise ValueError(f"{value!r} is not an owner: give an email address or team:<name>")


Identifier = Annotated[str, AfterValidator(_identifier)]
Owner = Annotated[str, AfterValidator(_owner)]
FieldPath = Annotated[str, AfterValidator(_field_path)]
PropertyName = Annotated[str, AfterValidator(_property_name)]
EnvVarName = Annotated[str, AfterValidator(_env_var_name)]
RuleValue = str | int | float | bool | date | datetime | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    """Relative file paths in the config are relative to the config file's folder."""
    if value is None or value.is_absolute():
        return value
    base_dir = (info.context or {}).get("base_dir")
    return Path(base_dir) / value if base_dir else value


class Project(_Model):
    """A project of the marketing tool; integrations feed people into one project's audience.

    `api_budget_percent` caps every integration of the project: an org is connected to one project only, so
    it is the org-wide cap when several integrations share an org (each integration's own setting applies
    below it)."""

    id: Identifier
    name: str | None = None
    api_budget_percent: int | None = Field(None, ge=1, le=100)

    @model_validator(mode="before")
    @classmethod
    def _bare_id(cls, data: Any) -> Any:
        return {"id": data} if isinstance(data, str) else data


class EmulatorOptions(_Model):
    """Size and persistence of the embedded emulated org (`environment: emulator`)."""

    seed: int = 7
    leads: int = Field(2000, ge=0)
    contacts: int = Field(1000, ge=0)
    campaign_members: int = Field(500, ge=0)
    #: None: as many as the emulator derives from the people (an Account per 5 Contacts, an Opportunity per
    #: 2 Accounts, enough Campaigns for the members).
    accounts: int | None = Field(None, ge=0)
    opportunities: int | None = Field(None, ge=0)
    campaigns: int | None = Field(None, ge=0)
    state_file: Path | None = None

    _resolve_state_file = field_validator("state_file")(_resolve_path)

    def counts(self) -> dict[str, int]:
        """Records per object to generate the org with (the emulator derives the ones left out)."""
        counts = {"Lead": self.leads, "Contact": self.contacts, "CampaignMember": self.campaign_members,
                  "Account": self.accounts, "Opportunity": self.opportunities, "Campaign": self.campaigns}
        return {name: count for name, count in counts.items() if count is not None}


_INLINE_SECRET_KEYS = frozenset({
    "client_id", "client_secret", "consumer_key", "consumer_secret", "refresh_token", "access_token",
    "password", "security_token", "private_key", "private_key_file", "token", "secret",
})

_AUTH_ALLOWED: dict[str, frozenset[str]] = {
    "refresh_token": frozenset({"client_id_env", "client_secret_env", "refresh_token_env"}),
    "jwt_bearer": frozenset({"client_id_env", "username_env", "username", "private_key_env", "private_key_file_env"}),
    "client_credentials": frozenset({"client_id_env", "client_secret_env"}),
    "password": frozenset({"username_env", "password_env", "security_token_env", "client_id_env", "client_secret_env"}),
}
_AUTH_FIELDS: frozenset[str] = frozenset().union(*_AUTH_ALLOWED.values())
_AUTH_REQUIRED: dict[str, tuple[str, ...]] = {
    "refresh_token": ("client_id_env", "refresh_token_env"),
    "jwt_bearer": ("client_id_env",),
    "client_credentials": ("client_id_env", "client_secret_env"),
    "password": ("username_env", "password_env"),
}


class AuthConfig(_Model):
    """How to log in. Secrets are only ever NAMES of environment variables, read at run time.

    - refresh_token: client_id_env, refresh_token_env, optional client_secret_env
    - jwt_bearer: client_id_env, username or username_env, private_key_env or private_key_file_env
    - client_credentials: client_id_env, client_secret_env (My Domain or explicit URL only)
    - password: username_env, password_env, optional security_token_env, and optionally
      client_id_env + client_secret_env together (OAuth password flow instead of SOAP login)
    """

    method: AuthMethod
    client_id_env: EnvVarName | None = None
    client_secret_env: EnvVarName | None = None
    refresh_token_env: EnvVarName | None = None
    username_env: EnvVarName | None = None
    username: str | None = None
    password_env: EnvVarName | None = None
    security_token_env: EnvVarName | None = None
    private_key_env: EnvVarName | None = None
    private_key_file_env: EnvVarName | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key in _INLINE_SECRET_KEYS:
                    raise FieldProblem(
                        key,
                        "inline secrets are not allowed: put the value in an environment variable and "
                        f"give its name as {key}_env (value not shown)",
                    )
        return data

    @field_validator("username")
    @classmethod
    def _username_is_a_login(cls, value: str | None) -> str | None:
        if value is not None and "@" not in value:
            raise ValueError("a Salesforce username looks like an email address (value not shown)")
        return value

    @model_validator(mode="after")
    def _fits_method(self) -> AuthConfig:
        allowed = _AUTH_ALLOWED[self.method]
        unused = sorted(name for name in _AUTH_FIELDS - allowed if getattr(self, name) is not None)
        if unused:
            raise FieldProblem(unused[0], f"is not used by method '{self.method}' (it takes {', '.join(sorted(allowed))})")
        for name in _AUTH_REQUIRED[self.method]:
            if getattr(self, name) is None:
                raise FieldProblem(name, f"is required for method '{self.method}'")
        if self.method == "jwt_bearer":
            _exactly_one(self, "username", "username_env")
            _exactly_one(self, "private_key_env", "private_key_file_env")
        if self.method == "password" and (self.client_id_env is None) != (self.client_secret_env is None):
            raise FieldProblem(
                "client_secret_env" if self.client_secret_env is None else "client_id_env",
                "method 'password' takes client_id_env and client_secret_env together (OAuth) or neither (SOAP login)",
            )
        return self


def _exactly_one(auth: AuthConfig, first: str, second: str) -> None:
    if (getattr(auth, first) is None) == (getattr(auth, second) is None):
        raise FieldProblem(first, f"method '{auth.method}' needs exactly one of {first} and {second}")


class SyncRule(_Model):
    """One filter on a Salesforce field; `value` is required except for is_set / is_not_set."""

    field: FieldPath
    operator: Operator
    value: RuleValue = None

    @field_validator("value", mode="before")
    @classmethod
    def _scalar(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple, dict, set)):
            raise ValueError(f"{value!r} is not a single value (text, number, boolean, date or datetime)")
        return value

    @model_validator(mode="after")
    def _value_fits_operator(self) -> SyncRule:
        if self.operator in VALUELESS_OPERATORS and self.value is not None:
            raise FieldProblem("value", f"operator '{self.operator}' takes no value, got {self.value!r}")
        if self.operator not in VALUELESS_OPERATORS and (self.value is None or self.value == ""):
            raise FieldProblem("value", f"operator '{self.operator}' needs a value")
        return self


class SyncRules(_Model):
    """Which records sync: all rules (`match: all`, AND) or any (`match: any`, OR); `rules: []` = all records."""

    match: Literal["all", "any"] = "all"
    rules: tuple[SyncRule, ...]


class FieldMapping(_Model):
    """Salesforce field (or relationship path) -> store property of a given type.

    In YAML `field` is one path or a list of paths; a list takes the first non-null value, which is
    how CampaignMember reads the opt-out through its Lead or Contact.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True)

    fields: tuple[FieldPath, ...] = Field(alias="field", min_length=1)
    property: PropertyName
    type: PropertyType

    @field_validator("fields", mode="before")
    @classmethod
    def _one_or_more_paths(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value


class RecordLink(NamedTuple):
    """A reference field read with every record whatever the mappings, kept in `properties`."""

    field: str
    property: str
    target: ObjectType
    """The object it names."""


@dataclass(frozen=True)
class ObjectRules:
    """What is special about one syncable object. Every object is read the same way (windows on its
    LastModifiedDate or SystemModstamp, which every one of them has, queryAll for deletions, Id
    reconciliation); these are its differences."""

    person: bool
    """Its records are people: the default mappings fill the person columns (email, first_name, last_name,
    phone, unsubscribed) and `audience/<project>/people` groups them. Other objects' rows leave those columns
    NULL and keep every mapped value in `properties`."""
    opt_out: tuple[str, ...] = ()
    """Where the opt-out is read (the first non-null of these paths); none for objects that have none."""
    identity_links: tuple[RecordLink, ...] = ()
    """References that make two records one person (`sync.identity`)."""
    company_links: tuple[RecordLink, ...] = ()
    """References to the Account a record belongs to: kept so a person (or a deal) can be joined to their
    company; they join no one into a person."""
    defaults: tuple[tuple[str, str, PropertyType], ...] = ()
    """(field, property, type) mapped unless a configured mapping takes the property."""
    versioned_by: tuple[str, ...] = ()
    """Parents whose changes are the record's too: a CampaignMember carries its Lead's or Contact's name and
    opt-out, but its own LastModifiedDate does not move when they change, so a window also selects the
    records whose parent changed in it, and a row's version is the newest of their stamps."""


_PERSON_FIELDS = (("Email", "email", "string"), ("FirstName", "first_name", "string"),
                  ("LastName", "last_name", "string"), ("Phone", "phone", "string"))
_ACCOUNT_LINK = RecordLink("AccountId", "account_id", "Account")

OBJECT_RULES: dict[ObjectType, ObjectRules] = {
    "Lead": ObjectRules(person=True, opt_out=("HasOptedOutOfEmail",), defaults=_PERSON_FIELDS,
                        identity_links=(RecordLink("ConvertedContactId", "converted_contact_id", "Contact"),)),
    "Contact": ObjectRules(person=True, opt_out=("HasOptedOutOfEmail",), defaults=_PERSON_FIELDS,
                           company_links=(_ACCOUNT_LINK,)),
    # A member's opt-out is its Lead's or Contact's.
    "CampaignMember": ObjectRules(person=True, opt_out=("Lead.HasOptedOutOfEmail", "Contact.HasOptedOutOfEmail"),
                                  defaults=_PERSON_FIELDS, versioned_by=("Lead", "Contact"),
                                  identity_links=(RecordLink("LeadId", "lead_id", "Lead"),
                                                  RecordLink("ContactId", "contact_id", "Contact"))),
    "Account": ObjectRules(person=False, defaults=(("Name", "name", "string"),)),
    "Opportunity": ObjectRules(person=False, defaults=(("Name", "name", "string"),), company_links=(_ACCOUNT_LINK,)),
    "Campaign": ObjectRules(person=False, defaults=(("Name", "name", "string"),)),
}
PERSON_OBJECTS: tuple[ObjectType, ...] = tuple(name for name, rules in OBJECT_RULES.items() if rules.person)
"""The objects whose records are people (the others are companies, deals, campaigns)."""

#: The reference fields that tie one person's records together (`sync.identity`), per person object.
IDENTITY_LINKS: dict[ObjectType, tuple[RecordLink, ...]] = {
    name: OBJECT_RULES[name].identity_links for name in PERSON_OBJECTS}
CONVERTED_PROPERTY = "is_converted"
"""A Lead's IsConverted: converted Leads are read-only in Salesforce, so write-back skips them."""


def reference_mappings(object_type: ObjectType) -> tuple[FieldMapping, ...]:
    """The mappings of an object's identity and company references (and a Lead's IsConverted), read
    whatever the configuration; no configured mapping may take their property names."""
    rules = OBJECT_RULES[object_type]
    links = tuple(FieldMapping(fields=(link.field,), property=link.property, type="string")
                  for link in (*rules.identity_links, *rules.company_links))
    converted = (FieldMapping(fields=("IsConverted",), property=CONVERTED_PROPERTY, type="boolean"),)
    return links + (converted if object_type == "Lead" else ())


def default_mappings(object_type: ObjectType) -> tuple[FieldMapping, ...]:
    """Mappings every object has: its default fields (the person fields of a person object) and opt-out,
    unless a configured mapping targets the same property, then its references."""
    rules = OBJECT_RULES[object_type]
    opt_out = (FieldMapping(fields=rules.opt_out, property=OPT_OUT_PROPERTY, type="boolean"),) if rules.opt_out else ()
    return (
        *(FieldMapping(fields=(field,), property=name, type=kind) for field, name, kind in rules.defaults),
        *opt_out,
        *reference_mappings(object_type),
    )


def effective_mappings(
    object_type: ObjectType, configured: tuple[FieldMapping, ...] | None
) -> tuple[FieldMapping, ...]:
    """Defaults not overridden (by property), then the configured mappings in file order."""
    overridden = {m.property for m in configured or ()}
    defaults = tuple(m for m in default_mappings(object_type) if m.property not in overridden)
    return defaults + tuple(configured or ())


class ObjectConfig(_Model):
    """Per-object settings; either key may be absent while the integration is being set up."""

    sync_rules: SyncRules | None = None
    field_mappings: tuple[FieldMapping, ...] | None = None

    @model_validator(mode="after")
    def _mappings_consistent(self) -> ObjectConfig:
        counts = Counter(m.property for m in self.field_mappings or ())
        for index, mapping in enumerate(self.field_mappings or ()):
            if counts[mapping.property] > 1:
                raise FieldProblem(("field_mappings", index, "property"),
                                   f"property '{mapping.property}' is mapped more than once")
            required = STORE_COLUMN_TYPES.get(mapping.property)
            if required is not None and mapping.type != required:
                what = "the opt-out property" if mapping.property == OPT_OUT_PROPERTY else "store column"
                raise FieldProblem(("field_mappings", index, "type"),
                                   f"{what} '{mapping.property}' must be of type {required}, not {mapping.type}")
        return self


def classify_environment(value: str) -> tuple[EnvironmentKind, str | None]:
    """(kind, login URL) of an `environment` value; the emulator's URL is only known when it runs."""
    lowered = value.strip().lower()
    if lowered == "production":
        return "production", PRODUCTION_LOGIN_URL
    if lowered == "sandbox":
        return "sandbox", SANDBOX_LOGIN_URL
    if lowered == "emulator":
        return "emulator", None
    if lowered.startswith("http://"):
        raise ValueError(f"{value!r}: Salesforce logins need https://, not http://")
    if lowered.startswith("https://"):
        parts = urlsplit(value.strip())
        if not parts.hostname or parts.query or parts.fragment or parts.path not in ("", "/"):
            raise ValueError(f"{value!r} is not a login URL: give scheme, host and optional port only")
        return "url", f"https://{parts.netloc}"
    if _HOST.fullmatch(lowered) and lowered.endswith(_MY_DOMAIN_SUFFIX):
        return "my_domain", f"https://{lowered}"
    raise ValueError(
        f"{value!r} is not production, sandbox, emulator, a My Domain host (acme.my.salesforce.com, "
        "acme--uat.sandbox.my.salesforce.com) or an https:// login URL"
    )


def _as_utc_datetime(value: Any) -> Any:
    """Dates mean midnight UTC; naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text) if "T" in text or " " in text else date.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date (2026-11-20) or datetime (2026-11-20T06:00:00Z)"
            ) from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    raise ValueError(f"{value!r} is not a date (2026-11-20) or datetime (2026-11-20T06:00:00Z)")


class EmailAlerts(_Model):
    """Alerts by email through an SMTP server; its login, if any, from environment variables."""

    smtp_host: str
    smtp_port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    from_address: str
    to: tuple[str, ...] = Field(min_length=1)
    username_env: EnvVarName | None = None
    password_env: EnvVarName | None = None


class AlertsConfig(_Model):
    """Where an integration's owners hear of it failing and recovering (once per change of state).

    URLs are secrets (a Slack webhook URL is a credential), so only the names of the variables holding
    them are configured."""

    webhook_url_env: EnvVarName | None = None
    slack_webhook_url_env: EnvVarName | None = None
    email: EmailAlerts | None = None


OWN_CLIENT_NAME = "salesforce-sync"
"""The client name this project's write-back sends in Sforce-Call-Options (`client=salesforce-sync`); change events
whose changeOrigin carries it are our own writes coming back."""
PUBSUB_ENDPOINT = "api.pubsub.salesforce.com:7443"


class ChangeCaptureConfig(_Model):
    """Near-real-time sync from Change Data Capture: a subscription to the org's change events over the Pub/Sub
    API whose events are grouped into micro-syncs (records read by Id). Window syncs keep running beside it.

    `pubsub_url` is the Pub/Sub API's `host:port` (Salesforce's global endpoint by default; the embedded emulator
    serves its own). `topic` is `/data/ChangeEvents` (every entity selected for CDC) or a custom channel."""

    enabled: bool = False
    mode: Literal["sensor", "listener"] = "sensor"
    """Who listens: Dagster's daemon (the change_capture_<integration> sensor requesting micro_sync runs), or a
    standing `salesforce-sync listen` process that applies micro-syncs itself and reports them to Dagster."""
    topic: str = Field("/data/ChangeEvents", pattern=r"^/data/[A-Za-z][A-Za-z0-9_]*$")
    pubsub_url: str | None = Field(None, pattern=r"^[A-Za-z0-9.-]+:\d{1,5}$")
    debounce_seconds: float = Field(1.0, ge=0, le=300)
    """A micro-sync starts once no event arrived for this long (or max_batch events are waiting)."""
    max_batch: int = Field(2000, ge=1, le=100_000)
    drain_seconds: float = Field(20.0, gt=0, le=600)
    """The longest a sensor tick listens before it requests what it has."""
    lag_threshold_seconds: int = Field(300, ge=1, le=86_400)
    """The change_capture check fails when events wait longer than this, or the subscription has not been heard
    from for this long."""
    sensor_interval_seconds: int = Field(5, ge=1, le=3600)


WriteBackObject = Literal["Lead", "Contact", "Account"]
WRITE_BACK_OBJECTS: tuple[WriteBackObject, ...] = get_args(WriteBackObject)
#: What a push can write besides the objects: Lead conversions and campaign membership (`push --object`).
WRITE_BACK_EXTRAS = ("LeadConversion", "CampaignMember")
FieldMode = Literal["dont_sync", "fill", "overwrite"]
MatchStep = Literal["linked", "external_id", "email", "domain"]
#: How each write-back object finds the Salesforce record of a source row, unless `match` says otherwise.
DEFAULT_MATCH: dict[str, tuple[MatchStep, ...]] = {
    "Lead": ("linked", "external_id", "email"), "Contact": ("linked", "external_id", "email"),
    "Account": ("linked", "external_id", "domain"),
}
_MATCH_COLUMN = {"email": "email_column", "domain": "website_column"}
_SQL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SALESFORCE_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")


def _sql_name(value: str) -> str:
    if not _SQL_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a table or column name (letters, digits and underscores)")
    return value


def _salesforce_field(value: str) -> str:
    if not _SALESFORCE_FIELD.fullmatch(value):
        raise ValueError(f"{value!r} is not a Salesforce field API name of the object itself (e.g. Status, Tier__c)")
    return value


SqlName = Annotated[str, AfterValidator(_sql_name)]
SalesforceField = Annotated[str, AfterValidator(_salesforce_field)]


class WriteBackField(_Model):
    """One source column written to one Salesforce field.

    `mode`: overwrite (Salesforce takes the source's value when it differs), fill (only while Salesforce's value
    is empty), dont_sync (never written). A null source value is never sent unless `send_nulls`. `value_map`
    translates source values (a tool's stage) into the field's values (a Lead Status); unmapped values pass as
    they are."""

    column: SqlName
    field: SalesforceField
    mode: FieldMode = "overwrite"
    send_nulls: bool = False
    value_map: dict[str, str] | None = None


class WriteBackAccountLink(_Model):
    """A Contact's company: `column` holds the company's key as the Account write-back's source keys it; the Account
    that key is linked to (matched or created by that push, which runs first) becomes the Contact's AccountId. `mode`
    as a field's: fill (default) sets it only while the Contact has no Account, overwrite moves the Contact."""

    column: SqlName
    mode: FieldMode = "fill"


class WriteBackOwner(_Model):
    """OwnerId from a source column holding the owner's email (the active User with that email); else the
    `default_email` User; else nothing is sent and Salesforce makes the connecting user the owner. `mode` as a
    field's (fill: set on create only, as a record always has an owner)."""

    column: SqlName | None = None
    default_email: str | None = None
    mode: FieldMode = "fill"


class WriteBackConvert(_Model):
    """Convert the row's Lead once its `stage_column` reaches `at_stage` (see README "Converting Leads").

    `converted_status`: the Lead Status a conversion sets, default the org's first converted LeadStatus;
    `account`: match_by_domain (an existing Contact with the Lead's email, else the Account whose Website has the
    Lead's website or email domain) or new (always a new Account and Contact)."""

    stage_column: SqlName
    at_stage: tuple[str, ...] = Field(min_length=1)
    converted_status: str | None = None
    create_opportunity: bool = False
    account: Literal["match_by_domain", "new"] = "match_by_domain"

    @field_validator("at_stage", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value


class WriteBackSource(_Model):
    """What every write-back reads: a `table` or a `query` in the audience store's database, `key` the column
    holding each row's key (a person's, a company's, an activity's), and the Dagster asset the source is."""

    table: SqlName | None = None
    query: str | None = None
    key: SqlName
    upstream_asset_key: tuple[str, ...] | None = None
    """The Dagster asset the source is (lineage); default audience/<project>/<table> for a table source."""

    @field_validator("upstream_asset_key", mode="before")
    @classmethod
    def _slash_path(cls, value: Any) -> Any:
        return tuple(value.split("/")) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.table is None) == (self.query is None):
            raise FieldProblem("table", "give exactly one of table and query as the source")
        return self


class WriteBackCampaignMembers(WriteBackSource):
    """People of a source (table or query) made members of one Campaign (by Id or Name), matched to their
    Contact or Lead by the key's write-back link, then by email; `status_column` values through `status_map`
    become the member Status, which must be one of the campaign's CampaignMemberStatus labels unless
    `create_missing_statuses` (see README "Campaign membership")."""

    campaign: str = Field(min_length=1)
    email_column: SqlName
    status_column: SqlName | None = None
    status_map: dict[str, str] = Field(default_factory=dict)
    create_missing_statuses: bool = False

    @property
    def source_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for c in (self.key, self.email_column, self.status_column) if c is not None))


class WriteBackObjectConfig(WriteBackSource):
    """Where one Salesforce object's write-back reads its rows and how it writes them.

    The source is a `table` or a `query` in the audience store's database, with `key` the column holding the
    person's or company's key. `match` orders how a row finds its record (linked Id, external ID, email for
    Lead and Contact, website domain for Account); with none found it is created when `create` allows."""

    fields: tuple[WriteBackField, ...] = Field(min_length=1)
    match: tuple[MatchStep, ...] | None = None
    email_column: SqlName | None = None
    website_column: SqlName | None = None
    match_subdomains: bool = False
    create: bool = True
    external_id_field: SalesforceField | None = None
    owner: WriteBackOwner | None = None
    account: WriteBackAccountLink | None = None
    """Contacts only: link each Contact to its company's Account (see WriteBackAccountLink)."""
    convert: WriteBackConvert | None = None
    """Leads only: convert the row's Lead when its stage column reaches a value."""

    @model_validator(mode="after")
    def _source_consistent(self) -> WriteBackObjectConfig:
        seen: set[str] = set()
        for index, mapped in enumerate(self.fields):
            if mapped.field in seen:
                raise FieldProblem(("fields", index, "field"), f"field '{mapped.field}' is written more than once")
            if mapped.field in ("Id", "OwnerId") or mapped.field == self.external_id_field:
                raise FieldProblem(("fields", index, "field"),
                                   f"field '{mapped.field}' is written by the write-back itself (link, owner, "
                                   "external ID)")
            seen.add(mapped.field)
        for step in self.match or ():
            column = _MATCH_COLUMN.get(step)
            if column is not None and getattr(self, column) is None:
                raise FieldProblem("match", f"matching by {step} needs {column}")
            if step == "external_id" and self.external_id_field is None:
                raise FieldProblem("match", "matching by external_id needs external_id_field")
        return self

    def match_order(self, object_type: WriteBackObject) -> tuple[MatchStep, ...]:
        """The configured order, else the object's default without the steps it has no column for."""
        if self.match is not None:
            return self.match
        usable = {"linked", *([] if self.external_id_field is None else ["external_id"]),
                  *(step for step, column in _MATCH_COLUMN.items() if getattr(self, column) is not None)}
        return tuple(step for step in DEFAULT_MATCH[object_type] if step in usable)

    @property
    def source_columns(self) -> tuple[str, ...]:
        """Every column a row's content is made of: what the snapshot hash covers."""
        columns = [self.key, *(f.column for f in self.fields), self.email_column, self.website_column,
                   self.owner.column if self.owner else None, self.account.column if self.account else None]
        return tuple(dict.fromkeys(c for c in columns if c is not None))


ActivityObject = Literal["Task", "Event"]
#: The name activities go by where write-back names an object (store rows, asset key, `push --object`).
ACTIVITY = "Activity"
ACTIVITY_OBJECTS: tuple[ActivityObject, ...] = get_args(ActivityObject)


class ActivityType(_Model):
    """How one type of activity is written: a Task (with its TaskSubtype) or an Event."""

    object: ActivityObject
    subtype: str | None = None
    """TaskSubtype of a Task (Call, Email, Task, ...); Events have none."""

    @model_validator(mode="after")
    def _subtype_of_task(self) -> ActivityType:
        if self.subtype is not None and self.object != "Task":
            raise FieldProblem("subtype", "only Tasks have a subtype (TaskSubtype)")
        return self


DEFAULT_ACTIVITY_TYPES: dict[str, ActivityType] = {
    "call": ActivityType(object="Task", subtype="Call"), "email": ActivityType(object="Task", subtype="Email"),
    "touchpoint": ActivityType(object="Task", subtype="Task"), "meeting": ActivityType(object="Event"),
    "visit": ActivityType(object="Event"),
}


class WriteBackActivities(WriteBackSource):
    """Activities of a source (a `table` or `query`) written as Tasks and Events on the person they concern.

    The person is found by `person_key_column` (the key of the Contact and Lead write-back sources: their
    links) and by `email_column` (people, then Salesforce Contacts before Leads). `types` maps the values of
    `type_column` to Task or Event. Only activities that occurred at or after `since` are written; without it,
    after the first push of the activities (the switch-on, kept in the store)."""

    person_key_column: SqlName | None = None
    email_column: SqlName | None = None
    type_column: SqlName = "type"
    subject_column: SqlName = "subject"
    description_column: SqlName | None = None
    occurred_at_column: SqlName = "occurred_at"
    status_column: SqlName | None = None
    duration_column: SqlName | None = None
    """Minutes: an Event's DurationInMinutes, a call Task's CallDurationInSeconds."""
    what_column: SqlName | None = None
    """An Account or Opportunity Id the activity is related to (WhatId); kept only when the person is a Contact."""
    owner_email_column: SqlName | None = None
    default_owner_email: str | None = None
    types: dict[str, ActivityType] = Field(default_factory=lambda: dict(DEFAULT_ACTIVITY_TYPES), min_length=1)
    include_bodies: bool = False
    """Send `description_column` (an email's or call note's body) as Description."""
    status_map: dict[str, str] = Field(default_factory=lambda: {"done": "Completed", "open": "Not Started"})
    """An activity's status -> the Task's Status (unmapped values pass as they are)."""
    default_event_minutes: int = Field(30, ge=1, le=1440)
    external_id_field: SalesforceField = "Activity_Key__c"
    since: datetime | None = None

    @field_validator("since", mode="before")
    @classmethod
    def _utc_since(cls, value: Any) -> Any:
        return None if value is None else _as_utc_datetime(value)

    @model_validator(mode="after")
    def _consistent(self) -> WriteBackActivities:
        if self.person_key_column is None and self.email_column is None:
            raise FieldProblem("person_key_column", "give person_key_column or email_column (or both) to find "
                                                    "the person an activity concerns")
        for name, kind in self.types.items():
            if name.lower().startswith("visit") and kind.object != "Event":
                raise FieldProblem(("types", name, "object"), "visits are written as Events only")
        return self

    @property
    def source_columns(self) -> tuple[str, ...]:
        """The columns an activity's content is made of: what the snapshot hash covers."""
        columns = [self.key, self.person_key_column, self.email_column, self.type_column, self.subject_column,
                   self.description_column if self.include_bodies else None, self.occurred_at_column,
                   self.status_column, self.duration_column, self.what_column, self.owner_email_column]
        return tuple(dict.fromkeys(c for c in columns if c is not None))


class WriteBackConfig(_Model):
    """Audience changes pushed into Salesforce: per object its source and fields (see README "Write-back")."""

    objects: dict[WriteBackObject, WriteBackObjectConfig] = Field(default_factory=dict)
    activities: WriteBackActivities | None = None
    """Activities written as Tasks and Events (see README "Activities")."""
    contact_before_lead: bool = True
    """A Lead row whose email belongs to a Contact, or whose person (audience/<project>/people) has a Contact in
    the org, is skipped: the person is a Contact now."""
    bulk_threshold: int = Field(2_000, ge=1)
    chunk_size: int = Field(10_000, ge=100, le=1_000_000)
    max_rejection_rate: float = Field(0.05, ge=0, le=1)
    """The write_back_rejections check fails when more of an object's rows than this share stand rejected."""
    campaign_members: WriteBackCampaignMembers | None = None
    """People added to a Campaign, their engagement as the member Status."""

    @model_validator(mode="after")
    def _person_match(self) -> WriteBackConfig:
        if not self.objects and self.campaign_members is None and self.activities is None:
            raise FieldProblem("objects", "name at least one object to write (or campaign_members, or activities)")
        for object_type, settings in self.objects.items():
            if object_type == "Account" and settings.email_column is not None:
                raise FieldProblem(("objects", object_type, "email_column"), "Accounts match by website_column")
            if object_type != "Account" and settings.website_column is not None:
                raise FieldProblem(("objects", object_type, "website_column"),
                                   f"{object_type}s match by email_column")
            if settings.convert is not None and object_type != "Lead":
                raise FieldProblem(("objects", object_type, "convert"), "only Leads are converted")
            if settings.account is not None and object_type != "Contact":
                raise FieldProblem(("objects", object_type, "account"), "only Contacts are linked to an Account")
            for step in settings.match or ():
                if (step == "email") == (object_type == "Account") and step in ("email", "domain"):
                    raise FieldProblem(("objects", object_type, "match"),
                                       f"{object_type} cannot match by {step}")
        return self

    @property
    def object_types(self) -> tuple[WriteBackObject, ...]:
        """Configured objects in push order: Accounts first, then Contacts, then Leads."""
        return tuple(o for o in ("Account", "Contact", "Lead") if o in self.objects)

    @property
    def pushed(self) -> tuple[str, ...]:
        """Everything a push writes, in order: the objects, then Lead conversion (after the Leads are written),
        then campaign membership (after conversions, so converted people join as Contacts), then the activities
        (which need their people)."""
        lead = self.objects.get("Lead")
        return (*self.object_types, *(["LeadConversion"] if lead is not None and lead.convert else []),
                *(["CampaignMember"] if self.campaign_members is not None else []),
                *([ACTIVITY] if self.activities is not None else []))


class IntegrationConfig(_Model):
    """One Salesforce org feeding one project.

    `history`: historical_and_forward (default) reads everything before the first window, then keeps
    in step; historical_only does that first read but schedules nothing after it; forward_only only
    reads records modified since `start`. `start` is required: a moving default would shift the
    partition windows every day.
    """

    id: Identifier
    project: Identifier
    environment: str | None = None
    ca_file: Path | None = None
    emulator: EmulatorOptions | None = None
    auth: AuthConfig | None = None
    objects: dict[ObjectType, ObjectConfig] = Field(default_factory=dict)
    frequency: Frequency = 60
    history: HistoryMode = "historical_and_forward"
    start: datetime
    active: bool = True
    overlap_minutes: int = Field(10, ge=0, le=1440)
    cursor_field: CursorField = "LastModifiedDate"
    bulk_threshold: int = Field(10_000, ge=0)
    chunk_size: int = Field(50_000, ge=100, le=1_000_000)
    alerts: AlertsConfig | None = None
    #: The share of the org's DailyApiRequests this integration's syncs, checks and previews may bring the
    #: org's usage to; a sync that would pass it is deferred (see `sync.budget`).
    api_budget_percent: int = Field(90, ge=1, le=100)
    #: Hours between Id reconciliations (hard deletes, records that left the rules without being modified);
    #: 0 reconciles on every sync. A full re-sync always reconciles.
    reconcile_every_hours: int = Field(24, ge=0, le=24 * 31)
    #: Minutes between re-reads of the mapped formula fields and relationship paths, whose values change without
    #: the record's LastModifiedDate moving (see `runs.formula_refresh`); 0 turns the scheduled refresh off.
    formula_refresh_minutes: int = Field(360, ge=0, le=7 * 1440)
    lease_wait_seconds: int = Field(600, ge=0, le=86_400)
    """How long a sync waits for another sync of the same integration to finish before it fails."""
    owners: tuple[Owner, ...] = ()
    """Who answers for the integration's assets in Dagster (emails or team:<name>)."""
    write_back: WriteBackConfig | None = None
    """Audience changes written to Salesforce Leads, Contacts and Accounts (`salesforce-sync push`)."""
    auto_map_new_fields: bool = False
    """When the schema_drift check finds custom fields the org added, map them by their describe type (the
    next sync re-reads the object)."""
    change_capture: ChangeCaptureConfig = Field(default_factory=ChangeCaptureConfig)

    _resolve_ca_file = field_validator("ca_file")(_resolve_path)

    @model_validator(mode="before")
    @classmethod
    def _emulator_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            environment = data.get("environment")
            if isinstance(environment, str) and environment.strip().lower() == "emulator" and data.get("emulator") is None:
                data = {**data, "emulator": {}}
            if isinstance(data.get("objects"), dict):
                data = {**data, "objects": {k: ({} if v is None else v) for k, v in data["objects"].items()}}
            elif data.get("objects") is None and "objects" in data:
                data = {**data, "objects": {}}
        return data

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, value: str | None) -> str | None:
        if value is not None:
            classify_environment(value)
        return value

    @field_validator("frequency", mode="before")
    @classmethod
    def _whole_windows(cls, value: Any) -> Any:
        if value == MANUAL:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(frequency_problem(value))
        window_minutes(value)
        return value

    @field_validator("start", mode="before")
    @classmethod
    def _utc_start(cls, value: Any) -> Any:
        return _as_utc_datetime(value)

    @model_validator(mode="after")
    def _identity_properties_kept(self) -> IntegrationConfig:
        for object_type, settings in self.objects.items():
            taken = {mapping.property for mapping in reference_mappings(object_type)}
            for index, mapping in enumerate(settings.field_mappings or ()):
                if mapping.property in taken:
                    raise FieldProblem(("objects", object_type, "field_mappings", index, "property"),
                                       f"'{mapping.property}' is filled by the sync itself ({object_type} "
                                       "references); map to another property name")
        return self

    @model_validator(mode="after")
    def _connection_consistent(self) -> IntegrationConfig:
        kind = self.environment_kind
        if self.ca_file is not None and kind != "url":
            raise FieldProblem("ca_file", "is only used with an explicit https:// login URL environment")
        if self.emulator is not None and kind != "emulator":
            raise FieldProblem("emulator", "options are only used with environment: emulator")
        if self.auth is not None and self.auth.method == "client_credentials" and kind in ("production", "sandbox"):
            raise FieldProblem(
                ("auth", "method"),
                f"client_credentials is refused by {self.login_url}; use the org's My Domain host "
                "(acme.my.salesforce.com) or an explicit login URL as environment",
            )
        return self

    @property
    def environment_kind(self) -> EnvironmentKind | None:
        return None if self.environment is None else classify_environment(self.environment)[0]

    @property
    def login_url(self) -> str | None:
        """Where to log in; None for the embedded emulator (its URL exists only once it runs)."""
        return None if self.environment is None else classify_environment(self.environment)[1]

    @property
    def allows_client_credentials(self) -> bool:
        """Salesforce accepts client_credentials only on a My Domain; explicit URLs and the emulator are one."""
        return self.environment_kind in ("my_domain", "url", "emulator")

    @property
    def object_types(self) -> tuple[ObjectType, ...]:
        """Configured objects in canonical order (OBJECT_TYPES)."""
        return tuple(o for o in OBJECT_TYPES if o in self.objects)

    def mappings(self, object_type: ObjectType) -> tuple[FieldMapping, ...]:
        """Effective field mappings of one object: defaults plus configured ones."""
        configured = self.objects[object_type].field_mappings if object_type in self.objects else None
        return effective_mappings(object_type, configured)

    def with_extra_mappings(self, object_type: ObjectType, extra: tuple[FieldMapping, ...]) -> IntegrationConfig:
        """A copy whose object also maps `extra` after its configured mappings (the mappings schema_drift
        added for new custom fields), so everything reading `mappings()` (the sync, its fingerprint) sees them."""
        if not extra:
            return self
        current = self.objects.get(object_type) or ObjectConfig()
        extended = current.model_copy(update={"field_mappings": tuple(current.field_mappings or ()) + extra})
        return self.model_copy(update={"objects": {**self.objects, object_type: extended}})

    def rule_fields(self, object_type: ObjectType) -> tuple[str, ...]:
        """The field paths one object's sync rules test (none when it has no rules)."""
        rules = self.objects[object_type].sync_rules if object_type in self.objects else None
        return tuple(rule.field for rule in rules.rules) if rules else ()

    def sync_rules(self, object_type: ObjectType) -> SyncRules | None:
        """One object's sync rules (None when it has none configured)."""
        return self.objects[object_type].sync_rules if object_type in self.objects else None

    @property
    def reconcile_every(self) -> timedelta:
        return timedelta(hours=self.reconcile_every_hours)

    @property
    def formula_refresh_every(self) -> timedelta | None:
        """The formula refresh cadence; None when the scheduled refresh is off."""
        return timedelta(minutes=self.formula_refresh_minutes) if self.formula_refresh_minutes else None

    @property
    def window_minutes(self) -> int:
        return window_minutes(self.frequency)

    def partition_cron(self) -> str:
        return partition_cron(self.frequency)

    @property
    def lease_wait(self) -> timedelta:
        return timedelta(seconds=self.lease_wait_seconds)

    @property
    def manual(self) -> bool:
        """Synced only on demand ("sync now"), which reads up to the present rather than to a window's end."""
        return self.frequency == MANUAL

    @property
    def overlap(self) -> timedelta:
        return timedelta(minutes=self.overlap_minutes)

    @property
    def scheduled(self) -> bool:
        """Whether a sensor syncs it: not when inactive or manual; a historical_only one's sensor requests
        only its initial import."""
        return self.active and self.frequency != MANUAL


class SyncConfig(_Model):
    """The whole file: declared projects and the integrations feeding them."""

    projects: tuple[Project, ...]
    integrations: tuple[IntegrationConfig, ...] = ()

    @field_validator("projects")
    @classmethod
    def _some_project(cls, value: tuple[Project, ...]) -> tuple[Project, ...]:
        if not value:
            raise ValueError("declare at least one project")
        return value

    @model_validator(mode="before")
    @classmethod
    def _no_null_lists(cls, data: Any) -> Any:
        if isinstance(data, dict) and "integrations" in data and data["integrations"] is None:
            data = {**data, "integrations": ()}
        return data

    @model_validator(mode="after")
    def _references_resolve(self) -> SyncConfig:
        seen_projects: set[str] = set()
        for index, project in enumerate(self.projects):
            if project.id in seen_projects:
                raise FieldProblem(("projects", index, "id"), f"project '{project.id}' is declared twice")
            seen_projects.add(project.id)
        seen_integrations: set[str] = set()
        for index, integration in enumerate(self.integrations):
            if integration.id in seen_integrations:
                raise FieldProblem(("integrations", index, "id"), f"integration id '{integration.id}' is used twice")
            seen_integrations.add(integration.id)
            if integration.project not in seen_projects:
                raise FieldProblem(
                    ("integrations", index, "project"),
                    f"'{integration.project}' is not a declared project (declared: {', '.join(sorted(seen_projects))})",
                )
        return self

    @model_validator(mode="after")
    def _org_wide_budget(self) -> SyncConfig:
        """Each integration's API budget within its project's (the org-wide) cap."""
        caps = {p.id: p.api_budget_percent for p in self.projects if p.api_budget_percent is not None}
        if not caps:
            return self
        capped = tuple(
            i.model_copy(update={"api_budget_percent": min(i.api_budget_percent, caps[i.project])})
            if i.project in caps else i for i in self.integrations)
        return self.model_copy(update={"integrations": capped})

    def integration(self, integration_id: str) -> IntegrationConfig:
        for integration in self.integrations:
            if integration.id == integration_id:
                return integration
        raise KeyError(f"no integration '{integration_id}' (configured: {', '.join(i.id for i in self.integrations)})")
