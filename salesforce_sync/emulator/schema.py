"""The emulated org's objects and fields, and their describe payloads.

One `FieldDef` per field drives everything else: the SQLite column the org stores it in, how the
SOQL compiler filters and sorts it, how REST and Bulk render its values, and the 57-key field entry
of `/sobjects/<Object>/describe`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from salesforce_sync.emulator.ids import KEY_PREFIXES, make_id

TEXT_TYPES = frozenset(
    {"string", "picklist", "multipicklist", "email", "phone", "url", "textarea", "combobox",
     "encryptedstring", "id", "reference"}
)
SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int",
    "double": "xsd:double", "currency": "xsd:double", "percent": "xsd:double", "date": "xsd:date",
    "datetime": "xsd:dateTime", "time": "xsd:time", "address": "urn:address", "long": "xsd:long",
}


@dataclass(frozen=True)
class FieldDef:
    """A field of an emulated object, with the describe attributes sync tools read."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    calculated: bool = False
    filterable: bool = True
    sortable: bool = True
    custom: bool = False
    unique: bool = False
    external_id: bool = False
    id_lookup: bool = False
    name_field: bool = False
    default: Any = None
    picklist: tuple[str, ...] = ()
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    precision: int = 0
    scale: int = 0
    digits: int = 0
    compound_field_name: str | None = None
    restricted_picklist: bool = False  # only the listed values are accepted on write
    formula: str | None = None  # calculatedFormula of a formula field (calculated, computed on read)
    defaulted_on_create: bool | None = None  # None: true when a default exists (and for ids and checkboxes)
    extra_type_info: str | None = None  # personname, plaintextarea, imageurl...

    @property
    def stored(self) -> bool:
        """Whether the org keeps a column for it: not a compound field, not a formula computed on read."""
        return self.storage is not None and not self.calculated

    @property
    def formula_path(self) -> tuple[str, ...] | None:
        """The field path a formula reads: `Account.Tier__c`, or `TEXT(Account.Tier__c)` (a picklist's value)."""
        if not self.formula:
            return None
        text = self.formula.strip()
        if text.upper().startswith("TEXT(") and text.endswith(")"):
            text = text[5:-1].strip()
        parts = tuple(text.split("."))
        if not all(part.replace("_", "").isalnum() for part in parts):
            raise ValueError(f"{self.name}: only a field-path formula is supported, not {self.formula!r}")
        return parts

    @property
    def storage(self) -> str | None:
        """How the org stores it: text, int, real, bool, datetime (epoch ms), date (ISO text); None if compound."""
        if self.type in TEXT_TYPES:
            return "text"
        return {
            "boolean": "bool", "int": "int", "long": "int", "double": "real", "currency": "real",
            "percent": "real", "datetime": "datetime", "date": "date", "time": "text",
        }.get(self.type)

    @property
    def polymorphic(self) -> bool:
        return len(self.reference_to) > 1

    def describe(self) -> dict[str, Any]:
        """The field entry of a describe call, with every key Salesforce's v59 describe has."""
        text = self.type in TEXT_TYPES and self.type not in ("id", "reference")
        length = self.length if (text or self.type in ("id", "reference")) else 0
        return {
            "aggregatable": self.type not in ("textarea",) or self.length <= 255,
            "aiPredictionField": False,
            "autoNumber": False,
            "byteLength": 3 * length,
            "calculated": self.calculated,
            "calculatedFormula": self.formula,
            "cascadeDelete": False,
            "caseSensitive": False,
            "compoundFieldName": self.compound_field_name,
            "controllerName": None,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": self.default,
            "defaultValueFormula": None,
            "defaultedOnCreate": (self.default is not None or self.type in ("id", "boolean")
                                  if self.defaulted_on_create is None else self.defaulted_on_create),
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": self.digits,
            "displayLocationInDecimal": False,
            "encrypted": False,
            "externalId": self.external_id,
            "extraTypeInfo": self.extra_type_info,
            "filterable": self.filterable,
            "filteredLookupInfo": None,
            "formulaTreatNullNumberAsZero": False,
            "groupable": self.sortable and self.type not in ("double", "currency", "percent", "datetime"),
            "highScaleNumber": False,
            "htmlFormatted": False,
            "idLookup": self.id_lookup,
            "inlineHelpText": None,
            "label": self.label or label_for(self.name),
            "length": length,
            "mask": None,
            "maskType": None,
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": self.polymorphic,
            "nillable": self.nillable,
            "permissionable": self.nillable and not self.calculated and self.name != "Id",
            "picklistValues": [
                {"active": True, "defaultValue": value == self.default, "label": value,
                 "validFor": None, "value": value}
                for value in self.picklist
            ],
            "polymorphicForeignKey": self.polymorphic,
            "precision": self.precision,
            "queryByDistance": False,
            "referenceTargetField": None,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "relationshipOrder": None,
            "restrictedDelete": False,
            "restrictedPicklist": self.restricted_picklist,
            "scale": self.scale,
            "searchPrefilterable": False,
            "soapType": SOAP_TYPES.get(self.type, "xsd:string"),
            "sortable": self.sortable,
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
            "writeRequiresMasterRead": False,
        }


@dataclass
class ObjectDef:
    """An emulated sObject: its fields in describe order, looked up case-insensitively."""

    name: str
    label_plural: str
    fields: list[FieldDef]
    _by_lower: dict[str, FieldDef] = field(init=False, repr=False)
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    setup: bool = False  # a setup object (LeadStatus, RecordType...): no feed, search, layouts, recycle bin or triggers

    def __post_init__(self) -> None:
        self._by_lower = {f.name.lower(): f for f in self.fields}

    @property
    def key_prefix(self) -> str:
        return KEY_PREFIXES[self.name]

    def field(self, name: str) -> FieldDef | None:
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field whose relationshipName is `name` (case-insensitive)."""
        lower = name.lower()
        for f in self.fields:
            if f.relationship_name and f.relationship_name.lower() == lower:
                return f
        return None

    @property
    def stored_fields(self) -> list[FieldDef]:
        """The fields the org keeps a column for, in describe order (no compound or formula fields)."""
        return [f for f in self.fields if f.stored]

    def global_entry(self, version: str) -> dict[str, Any]:
        """The object's entry in describeGlobal (`/sobjects`)."""
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            "activateable": False, "associateEntityType": None, "associateParentEntity": None,
            "createable": self.createable, "custom": False, "customSetting": False, "deepCloneable": False,
            "deletable": self.deletable, "deprecatedAndHidden": False, "feedEnabled": not self.setup,
            "hasSubtypes": False, "isInterface": False, "isSubtype": False,
            "keyPrefix": self.key_prefix, "label": label_for(self.name), "labelPlural": self.label_plural,
            "layoutable": not self.setup, "mergeable": self.name in ("Lead", "Contact", "Account"),
            "mruEnabled": not self.setup, "name": self.name, "queryable": True, "replicateable": True,
            "retrieveable": True, "searchable": not self.setup, "triggerable": not self.setup,
            "undeletable": self.deletable and not self.setup, "updateable": self.updateable,
            "urls": {
                "compactLayouts": f"{base}/describe/compactLayouts", "rowTemplate": f"{base}/{{ID}}",
                "approvalLayouts": f"{base}/describe/approvalLayouts", "listviews": f"{base}/listviews",
                "describe": f"{base}/describe", "quickActions": f"{base}/quickActions",
                "layouts": f"{base}/describe/layouts", "sobject": base,
            },
        }

    def describe(self, version: str, child_relationships: list[dict[str, Any]]) -> dict[str, Any]:
        """The full `/sobjects/<Object>/describe` body."""
        entry = self.global_entry(version)
        entry.update({
            "actionOverrides": [], "childRelationships": child_relationships,
            "compactLayoutable": True, "defaultImplementation": None, "extendedBy": None,
            "extendsInterfaces": None, "fields": [f.describe() for f in self.fields],
            "implementedBy": None, "implementsInterfaces": None, "listviewable": None,
            "lookupLayoutable": None, "namedLayoutInfos": [], "networkScopeFieldName": None,
            "recordTypeInfos": self.record_type_infos(version),
            "searchLayoutable": True, "sobjectDescribeOption": "FULL", "supportedScopes": [
                {"label": "All " + self.label_plural.lower(), "name": "everything"},
                {"label": "My " + self.label_plural.lower(), "name": "mine"},
            ],
        })
        return entry

    def record_type_infos(self, version: str) -> list[dict[str, Any]]:
        """The object's record types the org is set up with (the first active one the default), then Master."""
        own = [(record_type_id(n), rt) for n, rt in enumerate(RECORD_TYPES) if rt.object_name == self.name]
        default = next((rt_id for rt_id, rt in own if rt.active), MASTER_RECORD_TYPE_ID)
        entries = [(rt_id, rt.name, rt.developer_name, rt.active, False) for rt_id, rt in own]
        entries.append((MASTER_RECORD_TYPE_ID, "Master", "Master", True, True))
        layouts = f"/services/data/v{version}/sobjects/{self.name}/describe/layouts/"
        return [{"active": active, "available": active, "defaultRecordTypeMapping": rt_id == default,
                 "developerName": developer_name, "master": master, "name": name, "recordTypeId": rt_id,
                 "urls": {"layout": layouts + rt_id}}
                for rt_id, name, developer_name, active, master in entries]


@dataclass(frozen=True)
class RecordTypeDef:
    """A record type the org is set up with; the n-th of RECORD_TYPES is the org's n-th RecordType record."""

    object_name: str
    name: str
    developer_name: str
    description: str | None
    active: bool


MASTER_RECORD_TYPE_ID = "012000000000000AAA"
RECORD_TYPES = (
    RecordTypeDef("Account", "Customer", "Customer", "Companies that buy from us", True),
    RecordTypeDef("Account", "Partner", "Partner", "Resellers and referral partners", True),
    RecordTypeDef("Opportunity", "New Business", "New_Business", "A first sale to a new customer", True),
    RecordTypeDef("Opportunity", "Renewal", "Renewal", None, True),
    RecordTypeDef("Opportunity", "Legacy Deal", "Legacy_Deal", "Imported from the old CRM; no longer used", False),
)


def record_type_id(index: int) -> str:
    """Id of the org's RecordType record for RECORD_TYPES[index]."""
    return make_id(KEY_PREFIXES["RecordType"], index + 1)


def label_for(api_name: str) -> str:
    """'HasOptedOutOfEmail' -> 'Has Opted Out Of Email'; 'Score__c' -> 'Score'."""
    name = api_name.removesuffix("__c").replace("_", " ")
    out = ""
    for i, c in enumerate(name):
        if i and c.isupper() and (name[i - 1].islower() or (i + 1 < len(name) and name[i + 1].islower())) and name[i - 1] != " ":
            out += " "
        out += c
    return out


# ---- field building blocks --------------------------------------------------------------------

def _id() -> FieldDef:
    return FieldDef("Id", "id", "Record ID", length=18, nillable=False, createable=False,
                    updateable=False, id_lookup=True)


def _ref(name: str, *targets: str, relationship: str | None = None, label: str = "",
         createable: bool = True, updateable: bool = True, nillable: bool = True, **kw: Any) -> FieldDef:
    return FieldDef(name, "reference", label, length=18, reference_to=targets,
                    relationship_name=relationship or name.removesuffix("Id"),
                    createable=createable, updateable=updateable, nillable=nillable, **kw)


def _str(name: str, length: int = 255, label: str = "", **kw: Any) -> FieldDef:
    return FieldDef(name, "string", label, length=length, **kw)


def _text(name: str, length: int = 32000, label: str = "", **kw: Any) -> FieldDef:
    """A text area; long ones (over 255) can be neither filtered nor sorted."""
    long = length > 255
    return FieldDef(name, "textarea", label, length=length, filterable=not long, sortable=not long,
                    extra_type_info="plaintextarea", **kw)


def _pick(name: str, *values: str, default: str | None = None, length: int = 255, **kw: Any) -> FieldDef:
    return FieldDef(name, "picklist", length=length, picklist=values, default=default, **kw)


def _bool(name: str, label: str = "", **kw: Any) -> FieldDef:
    kw.setdefault("default", False)
    return FieldDef(name, "boolean", label, nillable=False, **kw)


def _num(name: str, kind: str = "double", precision: int = 18, scale: int = 2, **kw: Any) -> FieldDef:
    if kind == "int":
        return FieldDef(name, "int", digits=9, **kw)
    return FieldDef(name, kind, precision=precision, scale=scale, **kw)


def _readonly(f: FieldDef) -> FieldDef:
    return replace(f, createable=False, updateable=False)


def _owner(*targets: str) -> FieldDef:
    """OwnerId: required, but filled with the running user when a create leaves it out."""
    return _ref("OwnerId", *targets, relationship="Owner", nillable=False, defaulted_on_create=True)


def _audit(*, recycle_bin: bool = True, activity: bool = True, views: bool = True) -> list[FieldDef]:
    """The system fields: IsDeleted (objects with a recycle bin), creation and modification stamps, and the
    activity and recently-viewed dates (objects that have them)."""
    stamp = dict(nillable=False, createable=False, updateable=False, defaulted_on_create=True)
    fields = [_bool("IsDeleted", "Deleted", createable=False, updateable=False)] if recycle_bin else []
    fields += [
        FieldDef("CreatedDate", "datetime", **stamp),
        _ref("CreatedById", "User", **stamp),
        FieldDef("LastModifiedDate", "datetime", **stamp),
        _ref("LastModifiedById", "User", **stamp),
        FieldDef("SystemModstamp", "datetime", "System Modstamp", **stamp),
    ]
    if activity:
        fields.append(_readonly(FieldDef("LastActivityDate", "date")))
    if views:
        fields += [_readonly(FieldDef("LastViewedDate", "datetime")),
                   _readonly(FieldDef("LastReferencedDate", "datetime"))]
    return fields


_GEOCODE_ACCURACY = ("Address", "NearAddress", "Block", "Street", "ExtendedZip", "Zip", "Neighborhood", "City",
                     "County", "State", "Unknown")


def _address(prefix: str, *, geocode: bool = True) -> list[FieldDef]:
    """An address's parts and its read-only compound field (`BillingAddress`, or `Address` for no prefix)."""
    compound = prefix + "Address" if prefix else "Address"
    part = dict(compound_field_name=compound)
    fields = [
        _text(prefix + "Street", 255, **part),
        _str(prefix + "City", 40, **part),
        _str(prefix + "State", 80, **part),
        _str(prefix + "PostalCode", 20, **part),
        _str(prefix + "Country", 80, **part),
    ]
    if geocode:
        fields += [
            _num(prefix + "Latitude", precision=18, scale=15, **part),
            _num(prefix + "Longitude", precision=18, scale=15, **part),
            _pick(prefix + "GeocodeAccuracy", *_GEOCODE_ACCURACY, length=40, restricted_picklist=True, **part),
        ]
    fields.append(FieldDef(compound, "address", createable=False, updateable=False, filterable=False, sortable=False))
    return fields


_LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
_CLEAN_STATUSES = ("Matched", "Different", "Acknowledged", "NotFound", "Inactive", "Pending", "SelectMatch", "Skipped")


def _name_parts() -> list[FieldDef]:
    name_part = dict(compound_field_name="Name", extra_type_info="personname")
    return [
        _str("LastName", 80, nillable=False, **name_part),
        _str("FirstName", 40, **name_part),
        _pick("Salutation", "Mr.", "Ms.", "Mrs.", "Dr.", "Prof.", length=40, **name_part),
        _readonly(_str("Name", 121, "Full Name", name_field=True, extra_type_info="personname")),
    ]


def _person(address_prefix: str, fax_label: str = "Fax") -> list[FieldDef]:
    """The fields Leads and Contacts share, in describe order: name, title, address, phones, email, opt-outs."""
    return [
        *_name_parts(),
        _str("Title", 128),
        *_address(address_prefix),
        FieldDef("Email", "email", length=80, id_lookup=True),
        FieldDef("Phone", "phone", length=40),
        FieldDef("Fax", "phone", fax_label, length=40),
        FieldDef("MobilePhone", "phone", "Mobile Phone", length=40),
        _text("Description"),
        _pick("LeadSource", *_LEAD_SOURCES),
        _bool("HasOptedOutOfEmail", "Email Opt Out"),
        _bool("DoNotCall", "Do Not Call"),
        _bool("HasOptedOutOfFax", "Fax Opt Out"),
        _str("EmailBouncedReason", 255),
        FieldDef("EmailBouncedDate", "datetime"),
        _readonly(FieldDef("PhotoUrl", "url", "Photo URL", length=255, extra_type_info="imageurl")),
        _str("Jigsaw", 20, "Data.com Key"),
        _pick("CleanStatus", *_CLEAN_STATUSES, length=40, restricted_picklist=True, label="Clean Status"),
    ]


def _master_record(object_name: str) -> FieldDef:
    """MasterRecordId: on a record deleted by a merge, the record it was merged into."""
    return _readonly(_ref("MasterRecordId", object_name, label="Master Record ID"))


def _audience_id() -> FieldDef:
    """The audience store's key for a person or company: the external id a write-back upserts by."""
    return FieldDef("Audience_Id__c", "string", "Audience Id", length=64, custom=True, unique=True,
                    external_id=True, id_lookup=True)


def _activity_key() -> FieldDef:
    """An activity's key in the sending system, so retried activity writes upsert instead of duplicating."""
    return FieldDef("Activity_Key__c", "string", "Activity Key", length=80, custom=True, unique=True,
                    external_id=True, id_lookup=True)


# Whether a real org rejects a value outside these standard picklists (Lead.Status, Opportunity.StageName,
# Task.Status and Task.Priority, CampaignMember.Status) is UNCONFIRMED. The composed Lead.Status describe shows
# restrictedPicklist false, so the emulated org accepts any value; set True to emulate an org that refuses them.
STANDARD_STATUS_PICKLISTS_RESTRICTED = False
_STATUS = dict(restricted_picklist=STANDARD_STATUS_PICKLISTS_RESTRICTED)

_INDUSTRIES = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications", "Construction",
    "Consulting", "Education", "Electronics", "Energy", "Engineering", "Entertainment", "Environmental", "Finance",
    "Food & Beverage", "Government", "Healthcare", "Hospitality", "Insurance", "Machinery", "Manufacturing",
    "Media", "Not For Profit", "Recreation", "Retail", "Shipping", "Technology", "Telecommunications",
    "Transportation", "Utilities", "Other",
)
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
LEAD_DEFAULT_STATUS = "Open - Not Contacted"
LEAD_CONVERTED_STATUS = "Closed - Converted"
# Stage, probability (%) and forecast category of the standard sales process.
OPPORTUNITY_STAGES = (
    ("Prospecting", 10.0, "Pipeline"), ("Qualification", 10.0, "Pipeline"), ("Needs Analysis", 20.0, "Pipeline"),
    ("Value Proposition", 50.0, "Pipeline"), ("Id. Decision Makers", 60.0, "Pipeline"),
    ("Perception Analysis", 70.0, "Pipeline"), ("Proposal/Price Quote", 75.0, "Pipeline"),
    ("Negotiation/Review", 90.0, "Pipeline"), ("Closed Won", 100.0, "Closed"), ("Closed Lost", 0.0, "Omitted"),
)
CAMPAIGN_MEMBER_STATUSES = (("Sent", True, False), ("Responded", False, True))  # label, IsDefault, HasResponded
_ACTIVITY_WHAT = ("Account", "Campaign", "Opportunity")

LEAD = ObjectDef("Lead", "Leads", [
    _id(),
    _bool("IsDeleted", "Deleted", createable=False, updateable=False),
    _master_record("Lead"),
    *_person(""),
    _str("Company", 255, nillable=False),
    FieldDef("Website", "url", length=255),
    _pick("Industry", *_INDUSTRIES),
    _pick("Rating", "Hot", "Warm", "Cold"),
    _pick("Status", *LEAD_STATUSES, default=LEAD_DEFAULT_STATUS, nillable=False, **_STATUS),
    _num("AnnualRevenue", "currency", scale=0),
    _num("NumberOfEmployees", "int"),
    _owner("Group", "User"),
    _bool("IsConverted", "Converted", updateable=False),
    _readonly(FieldDef("ConvertedDate", "date")),
    _readonly(_ref("ConvertedAccountId", "Account")),
    _readonly(_ref("ConvertedContactId", "Contact")),
    _readonly(_ref("ConvertedOpportunityId", "Opportunity")),
    _bool("IsUnreadByOwner", "Unread By Owner"),
    _str("CompanyDunsNumber", 9, "Company D-U-N-S Number"),
    *[f for f in _audit() if f.name != "IsDeleted"],
    _num("Lead_Score__c", "double", scale=0, custom=True, label="Lead Score"),
    FieldDef("Interests__c", "multipicklist", "Interests", length=4099, custom=True, sortable=False,
             picklist=("Analytics", "Automation", "CRM", "Email", "Events", "Mobile")),
    FieldDef("External_Key__c", "string", "External Key", length=64, custom=True, unique=True,
             external_id=True, id_lookup=True),
    FieldDef("Newsletter_Signup__c", "date", "Newsletter Signup", custom=True),
    _audience_id(),
])

CONTACT = ObjectDef("Contact", "Contacts", [
    _id(),
    _bool("IsDeleted", "Deleted", createable=False, updateable=False),
    _master_record("Contact"),
    _ref("AccountId", "Account"),
    *[f for f in _person("Mailing", "Business Fax") if f.name not in ("Title", "Description", "LeadSource")],
    *_address("Other"),
    FieldDef("HomePhone", "phone", "Home Phone", length=40),
    FieldDef("OtherPhone", "phone", "Other Phone", length=40),
    FieldDef("AssistantPhone", "phone", "Asst. Phone", length=40),
    _ref("ReportsToId", "Contact"),
    _str("Title", 128),
    _str("Department", 80),
    _str("AssistantName", 40, "Assistant's Name"),
    _pick("LeadSource", *_LEAD_SOURCES),
    FieldDef("Birthdate", "date"),
    _text("Description"),
    _owner("User"),
    _readonly(_bool("IsEmailBounced", "Is Email Bounced")),
    _readonly(FieldDef("LastCURequestDate", "datetime", "Last Stay-in-Touch Request Date")),
    _readonly(FieldDef("LastCUUpdateDate", "datetime", "Last Stay-in-Touch Save Date")),
    *[f for f in _audit() if f.name != "IsDeleted"],
    FieldDef("Preferred_Language__c", "picklist", "Preferred Language", length=255, custom=True,
             picklist=("English", "French", "German", "Japanese", "Spanish")),
    _num("Lifetime_Value__c", "currency", custom=True, label="Lifetime Value"),
    _audience_id(),
    # A formula on the parent: its value changes with the Account's tier while the Contact's stamps stay put.
    FieldDef("Account_Tier__c", "string", "Account Tier", length=1300, custom=True, calculated=True,
             formula="TEXT(Account.Tier__c)", createable=False, updateable=False),
])

ACCOUNT = ObjectDef("Account", "Accounts", [
    _id(),
    _bool("IsDeleted", "Deleted", createable=False, updateable=False),
    _master_record("Account"),
    _str("Name", 255, "Account Name", nillable=False, name_field=True),
    _pick("Type", "Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller",
          "Installation Partner", "Technology Partner", "Other"),
    _ref("RecordTypeId", "RecordType", defaulted_on_create=True),
    _ref("ParentId", "Account"),
    *_address("Billing"),
    *_address("Shipping"),
    FieldDef("Phone", "phone", "Account Phone", length=40),
    FieldDef("Fax", "phone", "Account Fax", length=40),
    _str("AccountNumber", 40),
    FieldDef("Website", "url", length=255),
    _readonly(FieldDef("PhotoUrl", "url", "Photo URL", length=255, extra_type_info="imageurl")),
    _str("Sic", 20, "SIC Code"),
    _pick("Industry", *_INDUSTRIES),
    _num("AnnualRevenue", "currency", scale=0),
    _num("NumberOfEmployees", "int", label="Employees"),
    _pick("Ownership", "Public", "Private", "Subsidiary", "Other"),
    _str("TickerSymbol", 20),
    _text("Description"),
    _pick("Rating", "Hot", "Warm", "Cold", label="Account Rating"),
    _str("Site", 80, "Account Site"),
    _owner("User"),
    *[f for f in _audit() if f.name != "IsDeleted"],
    _str("Jigsaw", 20, "Data.com Key"),
    _pick("CleanStatus", *_CLEAN_STATUSES, length=40, restricted_picklist=True, label="Clean Status"),
    _pick("AccountSource", *_LEAD_SOURCES, label="Account Source"),
    _str("SicDesc", 80, "SIC Description"),
    _pick("Tier__c", "Gold", "Silver", "Bronze", custom=True, label="Tier", restricted_picklist=True),
    _audience_id(),
])

OPPORTUNITY = ObjectDef("Opportunity", "Opportunities", [
    _id(),
    _bool("IsDeleted", "Deleted", createable=False, updateable=False),
    _ref("AccountId", "Account"),
    _ref("RecordTypeId", "RecordType", defaulted_on_create=True),
    _bool("IsPrivate", "Private"),
    _str("Name", 120, nillable=False, name_field=True),
    _text("Description"),
    _pick("StageName", *(stage for stage, _, _ in OPPORTUNITY_STAGES), nillable=False, label="Stage", **_STATUS),
    _num("Amount", "currency"),
    _num("Probability", "percent", precision=3, scale=0, defaulted_on_create=True),
    _readonly(_num("ExpectedRevenue", "currency", label="Expected Amount")),
    _num("TotalOpportunityQuantity", "double", scale=2, label="Quantity"),
    FieldDef("CloseDate", "date", nillable=False),
    _pick("Type", "Existing Customer - Upgrade", "Existing Customer - Replacement",
          "Existing Customer - Downgrade", "New Customer", label="Opportunity Type"),
    _str("NextStep", 255),
    _pick("LeadSource", *_LEAD_SOURCES),
    _readonly(_bool("IsClosed", "Closed")),
    _readonly(_bool("IsWon", "Won")),
    _readonly(_pick("ForecastCategory", "Omitted", "Pipeline", "BestCase", "Forecast", "Closed", length=40,
                    nillable=False, restricted_picklist=True)),
    _pick("ForecastCategoryName", "Omitted", "Pipeline", "Best Case", "Commit", "Closed", length=255,
          label="Forecast Category", defaulted_on_create=True),
    _ref("CampaignId", "Campaign"),
    _readonly(_bool("HasOpportunityLineItem", "Has Line Item")),
    _owner("User"),
    *[f for f in _audit() if f.name != "IsDeleted"],
    _readonly(_str("Fiscal", 6, "Fiscal Period")),
    _readonly(_num("FiscalQuarter", "int", label="Fiscal Quarter")),
    _readonly(_num("FiscalYear", "int", label="Fiscal Year")),
    _ref("ContactId", "Contact", updateable=False, label="Contact ID"),
    _readonly(_bool("HasOpenActivity", "Has Open Activity", filterable=False)),
    _readonly(_bool("HasOverdueTask", "Has Overdue Task", filterable=False)),
])

CAMPAIGN = ObjectDef("Campaign", "Campaigns", [
    _id(),
    _bool("IsDeleted", "Deleted", createable=False, updateable=False),
    _str("Name", 80, "Campaign Name", nillable=False, name_field=True),
    _ref("ParentId", "Campaign"),
    _pick("Type", "Conference", "Webinar", "Trade Show", "Public Relations", "Partners", "Referral Program",
          "Advertisement", "Banner Ads", "Direct Mail", "Email", "Telemarketing", "Other"),
    _pick("Status", "Planned", "In Progress", "Completed", "Aborted"),
    FieldDef("StartDate", "date"),
    FieldDef("EndDate", "date"),
    _num("ExpectedRevenue", "currency", scale=0, label="Expected Revenue in Campaign"),
    _num("BudgetedCost", "currency", scale=0, label="Budgeted Cost in Campaign"),
    _num("ActualCost", "currency", scale=0, label="Actual Cost in Campaign"),
    _num("ExpectedResponse", "percent", precision=10, scale=2, label="Expected Response (%)"),
    _num("NumberSent", "double", scale=0, label="Num Sent in Campaign"),
    _bool("IsActive", "Active"),
    _text("Description"),
    _readonly(_num("NumberOfLeads", "int", label="Leads in Campaign")),
    _readonly(_num("NumberOfConvertedLeads", "int", label="Converted Leads in Campaign")),
    _readonly(_num("NumberOfContacts", "int", label="Contacts in Campaign")),
    _readonly(_num("NumberOfResponses", "int", label="Responses in Campaign")),
    _readonly(_num("NumberOfOpportunities", "int", label="Opportunities in Campaign")),
    _readonly(_num("NumberOfWonOpportunities", "int", label="Won Opportunities in Campaign")),
    _readonly(_num("AmountAllOpportunities", "currency", scale=0, label="Value Opportunities in Campaign")),
    _readonly(_num("AmountWonOpportunities", "currency", scale=0, label="Value Won Opportunities in Campaign")),
    _owner("User"),
    *[f for f in _audit() if f.name != "IsDeleted"],
])

CAMPAIGN_MEMBER_MIRRORS = (
    "FirstName", "LastName", "Name", "Title", "Street", "City", "State", "PostalCode", "Country", "Email", "Phone",
    "Fax", "MobilePhone", "Description", "DoNotCall", "HasOptedOutOfEmail", "HasOptedOutOfFax", "LeadSource",
)
CAMPAIGN_MEMBER = ObjectDef("CampaignMember", "Campaign Members", [
    _id(),
    _bool("IsDeleted", "Deleted", createable=False, updateable=False),
    _ref("CampaignId", "Campaign", updateable=False, nillable=False),
    _ref("LeadId", "Lead", updateable=False),
    _ref("ContactId", "Contact", updateable=False),
    # The values are the campaign's CampaignMemberStatus labels; a new member gets its default one.
    _pick("Status", *(label for label, _, _ in CAMPAIGN_MEMBER_STATUSES), default="Sent", **_STATUS),
    _readonly(_bool("HasResponded", "Responded")),
    *_audit(activity=False, views=False)[1:],
    _readonly(FieldDef("FirstRespondedDate", "date")),
    _readonly(_pick("Salutation", "Mr.", "Ms.", "Mrs.", "Dr.", "Prof.", length=40)),
    *[replace(f, createable=False, updateable=False, compound_field_name=None)
      for f in _person("") if f.name in CAMPAIGN_MEMBER_MIRRORS],
    _readonly(_str("CompanyOrAccount", 255, "Company (Account)")),
    _readonly(_str("Type", 40)),
    _readonly(_ref("LeadOrContactId", "Contact", "Lead", relationship="LeadOrContact")),
    _readonly(_ref("LeadOrContactOwnerId", "Group", "User", relationship="LeadOrContactOwner")),
])


def _activity(what: tuple[str, ...]) -> list[FieldDef]:
    """The fields Tasks and Events share: who and what they are about, subject, owner, description."""
    return [
        _id(),
        _ref("WhoId", "Contact", "Lead", relationship="Who", label="Name ID"),
        _ref("WhatId", *what, relationship="What", label="Related To ID"),
    ]


TASK = ObjectDef("Task", "Tasks", [
    *_activity(_ACTIVITY_WHAT),
    FieldDef("Subject", "combobox", length=255, picklist=("Call", "Email", "Send Letter", "Send Quote", "Other")),
    FieldDef("ActivityDate", "date", "Due Date Only"),
    _pick("Status", "Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred",
          default="Not Started", nillable=False, **_STATUS),
    _pick("Priority", "High", "Normal", "Low", default="Normal", nillable=False, length=40, **_STATUS),
    _readonly(_bool("IsHighPriority", "High Priority")),
    _owner("Group", "User"),
    _text("Description"),
    _bool("IsDeleted", "Deleted", createable=False, updateable=False),
    _readonly(_ref("AccountId", "Account")),
    _readonly(_bool("IsClosed", "Closed")),
    *_audit(recycle_bin=False, activity=False, views=False),
    _readonly(_bool("IsArchived", "Archived")),
    _num("CallDurationInSeconds", "int", label="Call Duration"),
    _pick("CallType", "Internal", "Inbound", "Outbound", length=40, restricted_picklist=True),
    _str("CallDisposition", 255, "Call Result"),
    _str("CallObject", 255, "Call Object Identifier"),
    FieldDef("ReminderDateTime", "datetime", "Reminder Date/Time"),
    _bool("IsReminderSet", "Reminder Set"),
    _pick("TaskSubtype", "Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn", length=40,
          updateable=False, restricted_picklist=True),
    _readonly(FieldDef("CompletedDateTime", "datetime", "Completed Date/Time")),
    _activity_key(),
])

EVENT = ObjectDef("Event", "Events", [
    *_activity(_ACTIVITY_WHAT),
    FieldDef("Subject", "combobox", length=255,
             picklist=("Call", "Email", "Meeting", "Send Letter/Quote", "Other")),
    _str("Location", 255),
    _bool("IsAllDayEvent", "All-Day Event"),
    # Not all-day: DurationInMinutes or EndDateTime is required (checked on write); all-day: the day is ActivityDate.
    FieldDef("ActivityDateTime", "datetime", "Due Date Time"),
    FieldDef("ActivityDate", "date", "Due Date Only"),
    _num("DurationInMinutes", "int", label="Duration"),
    FieldDef("StartDateTime", "datetime", "Start Date Time"),
    FieldDef("EndDateTime", "datetime", "End Date Time"),
    _readonly(FieldDef("EndDate", "date", "End Date")),
    _text("Description"),
    _readonly(_ref("AccountId", "Account")),
    _owner("Calendar", "User"),
    _bool("IsPrivate", "Private"),
    _pick("ShowAs", "Busy", "OutOfOffice", "Free", default="Busy", length=40, restricted_picklist=True,
          label="Show Time As"),
    _bool("IsDeleted", "Deleted", createable=False, updateable=False),
    _readonly(_bool("IsChild", "Is Child")),
    _readonly(_bool("IsGroupEvent", "Is Group Event")),
    _readonly(_pick("GroupEventType", "0", "1", "2", length=40, restricted_picklist=True)),
    *_audit(recycle_bin=False, activity=False, views=False),
    _readonly(_bool("IsArchived", "Archived")),
    FieldDef("ReminderDateTime", "datetime", "Reminder Date/Time"),
    _bool("IsReminderSet", "Reminder Set"),
    _pick("EventSubtype", "Event", length=40, updateable=False, restricted_picklist=True, default="Event"),
    _activity_key(),
])

USER = ObjectDef("User", "Users", [
    _id(),
    _str("Username", 80, nillable=False, unique=True, id_lookup=True),
    *[f for f in _name_parts() if f.name != "Salutation"],
    _str("CompanyName", 80, "Company Name"),
    _str("Division", 80),
    _str("Department", 80),
    _str("Title", 80),
    *_address(""),
    FieldDef("Email", "email", length=128, nillable=False),
    FieldDef("Phone", "phone", length=40),
    FieldDef("MobilePhone", "phone", "Mobile", length=40),
    _str("Alias", 8, nillable=False),
    _str("CommunityNickname", 40, "Nickname", unique=True, id_lookup=True),
    _bool("IsActive", "Active", default=True),
    _pick("TimeZoneSidKey", "America/Los_Angeles", "America/New_York", "Europe/London", "Europe/Paris",
          "Asia/Tokyo", nillable=False, label="Time Zone", length=40, restricted_picklist=True),
    _pick("LocaleSidKey", "en_US", "en_GB", "fr_FR", "de_DE", "es_ES", "ja_JP", nillable=False, label="Locale",
          length=40, restricted_picklist=True),
    _pick("EmailEncodingKey", "UTF-8", "ISO-8859-1", "Shift_JIS", nillable=False, label="Email Encoding",
          length=40, restricted_picklist=True),
    _pick("LanguageLocaleKey", "en_US", "fr", "de", "es", "ja", nillable=False, label="Language", length=40,
          restricted_picklist=True),
    _str("EmployeeNumber", 20),
    _ref("ManagerId", "User"),
    _readonly(FieldDef("LastLoginDate", "datetime")),
    _readonly(_pick("UserType", "Standard", "PowerPartner", "CspLitePortal", "CustomerSuccess", "PowerCustomerSuccess",
                    "CsnOnly", "Guest", length=40, restricted_picklist=True, defaulted_on_create=True)),
    _str("FederationIdentifier", 512, "SAML Federation ID", id_lookup=True),
    *_audit(recycle_bin=False, activity=False),
])

LEAD_STATUS = ObjectDef("LeadStatus", "Lead Status Values", [
    _id(),
    _str("MasterLabel", 255, "Master Label", nillable=False),
    _str("ApiName", 255, "Api Name", nillable=False),
    _num("SortOrder", "int", label="Sort Order"),
    _bool("IsDefault", "Is Default"),
    _bool("IsConverted", "Is Converted"),
    *_audit(recycle_bin=False, activity=False, views=False),
], createable=False, updateable=False, deletable=False, setup=True)

CAMPAIGN_MEMBER_STATUS = ObjectDef("CampaignMemberStatus", "Campaign Member Statuses", [
    _id(),
    _bool("IsDeleted", "Deleted", createable=False, updateable=False),
    _ref("CampaignId", "Campaign", updateable=False, nillable=False),
    _str("Label", 765, "Member Status", nillable=False),
    _num("SortOrder", "int", label="Sort Order"),
    _bool("IsDefault", "Is Default"),
    _bool("HasResponded", "Responded"),
    *_audit(activity=False, views=False)[1:],
], setup=True)

_RECORD_TYPE_OBJECTS = ("Account", "Campaign", "CampaignMember", "Contact", "Event", "Lead", "Opportunity", "Task")
RECORD_TYPE = ObjectDef("RecordType", "Record Types", [
    _id(),
    _str("Name", 80, "Record Type Name", nillable=False, name_field=True),
    _str("DeveloperName", 80, "Record Type Name", nillable=False),
    _readonly(_str("NamespacePrefix", 15)),
    _str("Description", 255),
    _pick("SobjectType", *_RECORD_TYPE_OBJECTS, nillable=False, updateable=False, length=40,
          restricted_picklist=True, label="SObject Type Name"),
    _bool("IsActive", "Active"),
    *_audit(recycle_bin=False, activity=False, views=False),
], deletable=False, setup=True)

STANDARD_OBJECTS: tuple[ObjectDef, ...] = (
    LEAD, CONTACT, CAMPAIGN_MEMBER, ACCOUNT, OPPORTUNITY, CAMPAIGN, TASK, USER,
    EVENT, LEAD_STATUS, CAMPAIGN_MEMBER_STATUS, RECORD_TYPE,
)


class OrgSchema:
    """The objects of one emulated org; a copy per org so schema changes stay local to it."""

    def __init__(self, objects: tuple[ObjectDef, ...] = STANDARD_OBJECTS) -> None:
        self.objects: dict[str, ObjectDef] = {o.name: copy.deepcopy(o) for o in objects}
        self._by_lower = {name.lower(): o for name, o in self.objects.items()}

    def object(self, name: str) -> ObjectDef | None:
        return self._by_lower.get(name.lower())

    def child_relationships(self, parent: str) -> list[dict[str, Any]]:
        """Child relationship entries of a describe, derived from the reference fields pointing at `parent`."""
        out = []
        for obj in self.objects.values():
            for f in obj.fields:
                if parent in f.reference_to and f.relationship_name:
                    out.append({
                        "cascadeDelete": obj.name == "CampaignMember", "childSObject": obj.name,
                        "deprecatedAndHidden": False, "field": f.name, "junctionIdListNames": [],
                        "junctionReferenceTo": [], "relationshipName": _plural(obj.name) if not f.custom else None,
                        "restrictedDelete": False,
                    })
        return out

    def replace_object(self, obj: ObjectDef) -> None:
        self.objects[obj.name] = obj
        self._by_lower[obj.name.lower()] = obj


def _plural(name: str) -> str:
    return {"Opportunity": "Opportunities", "CampaignMember": "CampaignMembers"}.get(name, name + "s")
