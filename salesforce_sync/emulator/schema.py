"""The emulated org's objects and fields, and their describe payloads.

One `FieldDef` per field drives everything else: the SQLite column the org stores it in, how the
SOQL compiler filters and sorts it, how REST and Bulk render its values, and the 57-key field entry
of `/sobjects/<Object>/describe`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from salesforce_sync.emulator.ids import KEY_PREFIXES

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
            "defaultedOnCreate": self.default is not None or self.type in ("id", "boolean"),
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": self.digits,
            "displayLocationInDecimal": False,
            "encrypted": False,
            "externalId": self.external_id,
            "extraTypeInfo": None,
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
        return [f for f in self.fields if f.storage is not None]

    def global_entry(self, version: str) -> dict[str, Any]:
        """The object's entry in describeGlobal (`/sobjects`)."""
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            "activateable": False, "associateEntityType": None, "associateParentEntity": None,
            "createable": True, "custom": False, "customSetting": False, "deepCloneable": False,
            "deletable": True, "deprecatedAndHidden": False, "feedEnabled": True,
            "hasSubtypes": False, "isInterface": False, "isSubtype": False,
            "keyPrefix": self.key_prefix, "label": label_for(self.name), "labelPlural": self.label_plural,
            "layoutable": True, "mergeable": self.name in ("Lead", "Contact", "Account"),
            "mruEnabled": True, "name": self.name, "queryable": True, "replicateable": True,
            "retrieveable": True, "searchable": True, "triggerable": True, "undeletable": True,
            "updateable": True,
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
            "recordTypeInfos": [{
                "active": True, "available": True, "defaultRecordTypeMapping": True,
                "developerName": "Master", "master": True, "name": "Master",
                "recordTypeId": "012000000000000AAA",
                "urls": {"layout": f"/services/data/v{version}/sobjects/{self.name}/describe/layouts/012000000000000AAA"},
            }],
            "searchLayoutable": True, "sobjectDescribeOption": "FULL", "supportedScopes": [
                {"label": "All " + self.label_plural.lower(), "name": "everything"},
                {"label": "My " + self.label_plural.lower(), "name": "mine"},
            ],
        })
        return entry


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
         createable: bool = True, updateable: bool = True, nillable: bool = True) -> FieldDef:
    return FieldDef(name, "reference", label, length=18, reference_to=targets,
                    relationship_name=relationship or name.removesuffix("Id"),
                    createable=createable, updateable=updateable, nillable=nillable)


def _str(name: str, length: int = 255, label: str = "", **kw: Any) -> FieldDef:
    return FieldDef(name, "string", label, length=length, **kw)


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


def _audit() -> list[FieldDef]:
    stamp = dict(nillable=False, createable=False, updateable=False)
    return [
        _bool("IsDeleted", "Deleted", createable=False, updateable=False),
        FieldDef("CreatedDate", "datetime", **stamp),
        _ref("CreatedById", "User", createable=False, updateable=False, nillable=False),
        FieldDef("LastModifiedDate", "datetime", **stamp),
        _ref("LastModifiedById", "User", createable=False, updateable=False, nillable=False),
        FieldDef("SystemModstamp", "datetime", "System Modstamp", **stamp),
        _readonly(FieldDef("LastActivityDate", "date")),
        _readonly(FieldDef("LastViewedDate", "datetime")),
        _readonly(FieldDef("LastReferencedDate", "datetime")),
    ]


def _person(address_prefix: str) -> list[FieldDef]:
    name_parts = dict(compound_field_name="Name")
    addr = address_prefix + "Address" if address_prefix else "Address"
    parts = [
        _str("LastName", 80, nillable=False, **name_parts),
        _str("FirstName", 40, **name_parts),
        _pick("Salutation", "Mr.", "Ms.", "Mrs.", "Dr.", "Prof.", length=40, **name_parts),
        _readonly(_str("Name", 121, "Full Name", name_field=True)),
        _str("Title", 128),
    ]
    comp = dict(compound_field_name=addr)
    parts += [
        FieldDef(address_prefix + "Street", "textarea", length=255, **comp),
        _str(address_prefix + "City", 40, **comp),
        _str(address_prefix + "State", 80, **comp),
        _str(address_prefix + "PostalCode", 20, **comp),
        _str(address_prefix + "Country", 80, **comp),
        FieldDef(addr, "address", createable=False, updateable=False, filterable=False, sortable=False),
        FieldDef("Email", "email", length=80, id_lookup=True),
        FieldDef("Phone", "phone", length=40),
        FieldDef("MobilePhone", "phone", "Mobile Phone", length=40),
        FieldDef("Description", "textarea", length=32000, filterable=False, sortable=False),
        _pick("LeadSource", "Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"),
        _bool("HasOptedOutOfEmail", "Email Opt Out"),
        _bool("DoNotCall", "Do Not Call"),
        _bool("HasOptedOutOfFax", "Fax Opt Out"),
        FieldDef("EmailBouncedReason", "string", length=255),
        FieldDef("EmailBouncedDate", "datetime"),
    ]
    return parts


_INDUSTRIES = ("Agriculture", "Banking", "Education", "Healthcare", "Manufacturing", "Retail", "Technology")

LEAD = ObjectDef("Lead", "Leads", [
    _id(),
    *_person(""),
    _str("Company", 255, nillable=False),
    FieldDef("Website", "url", length=255),
    _pick("Industry", *_INDUSTRIES),
    _pick("Rating", "Hot", "Warm", "Cold"),
    _pick("Status", "Open - Not Contacted", "Working - Contacted", "Closed - Converted",
          "Closed - Not Converted", default="Open - Not Contacted", nillable=False),
    _num("AnnualRevenue", "currency", scale=0),
    _num("NumberOfEmployees", "int"),
    _ref("OwnerId", "Group", "User", nillable=False),
    _bool("IsConverted", "Converted", updateable=False),
    _readonly(FieldDef("ConvertedDate", "date")),
    _readonly(_ref("ConvertedAccountId", "Account")),
    _readonly(_ref("ConvertedContactId", "Contact")),
    _readonly(_ref("ConvertedOpportunityId", "Opportunity")),
    _bool("IsUnreadByOwner", "Unread By Owner"),
    *_audit(),
    _num("Lead_Score__c", "double", scale=0, custom=True, label="Lead Score"),
    FieldDef("Interests__c", "multipicklist", "Interests", length=4099, custom=True, sortable=False,
             picklist=("Analytics", "Automation", "CRM", "Email", "Events", "Mobile")),
    FieldDef("External_Key__c", "string", "External Key", length=64, custom=True, unique=True,
             external_id=True, id_lookup=True),
    FieldDef("Newsletter_Signup__c", "date", "Newsletter Signup", custom=True),
])

CONTACT = ObjectDef("Contact", "Contacts", [
    _id(),
    _ref("AccountId", "Account"),
    *_person("Mailing"),
    _str("Department", 80),
    FieldDef("Birthdate", "date"),
    _ref("ReportsToId", "Contact"),
    _ref("OwnerId", "User", nillable=False),
    _readonly(_bool("IsEmailBounced", "Is Email Bounced")),
    *_audit(),
    FieldDef("Preferred_Language__c", "picklist", "Preferred Language", length=255, custom=True,
             picklist=("English", "French", "German", "Japanese", "Spanish")),
    _num("Lifetime_Value__c", "currency", custom=True, label="Lifetime Value"),
])

ACCOUNT = ObjectDef("Account", "Accounts", [
    _id(),
    _str("Name", 255, "Account Name", nillable=False, name_field=True),
    _pick("Type", "Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other"),
    _ref("ParentId", "Account"),
    FieldDef("BillingStreet", "textarea", length=255, compound_field_name="BillingAddress"),
    _str("BillingCity", 40, compound_field_name="BillingAddress"),
    _str("BillingState", 80, compound_field_name="BillingAddress"),
    _str("BillingPostalCode", 20, compound_field_name="BillingAddress"),
    _str("BillingCountry", 80, compound_field_name="BillingAddress"),
    FieldDef("BillingAddress", "address", createable=False, updateable=False, filterable=False, sortable=False),
    FieldDef("Phone", "phone", length=40),
    FieldDef("Website", "url", length=255),
    _pick("Industry", *_INDUSTRIES),
    _num("AnnualRevenue", "currency", scale=0),
    _num("NumberOfEmployees", "int"),
    FieldDef("Description", "textarea", length=32000, filterable=False, sortable=False),
    _ref("OwnerId", "User", nillable=False),
    *_audit(),
    _pick("Tier__c", "Gold", "Silver", "Bronze", custom=True, label="Tier"),
])

OPPORTUNITY = ObjectDef("Opportunity", "Opportunities", [
    _id(),
    _ref("AccountId", "Account"),
    _str("Name", 120, nillable=False, name_field=True),
    _pick("StageName", "Prospecting", "Qualification", "Proposal/Price Quote", "Closed Won",
          "Closed Lost", nillable=False, label="Stage"),
    _num("Amount", "currency"),
    _num("Probability", "percent", precision=3, scale=0),
    FieldDef("CloseDate", "date", nillable=False),
    _pick("Type", "New Customer", "Existing Customer - Upgrade", "Existing Customer - Renewal"),
    _pick("LeadSource", "Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"),
    _readonly(_bool("IsClosed", "Closed")),
    _readonly(_bool("IsWon", "Won")),
    _ref("CampaignId", "Campaign"),
    _ref("OwnerId", "User", nillable=False),
    *_audit(),
])

CAMPAIGN = ObjectDef("Campaign", "Campaigns", [
    _id(),
    _str("Name", 80, nillable=False, name_field=True),
    _ref("ParentId", "Campaign"),
    _pick("Type", "Conference", "Webinar", "Email", "Advertisement", "Other"),
    _pick("Status", "Planned", "In Progress", "Completed", "Aborted"),
    FieldDef("StartDate", "date"),
    FieldDef("EndDate", "date"),
    _bool("IsActive", "Active"),
    _num("BudgetedCost", "currency"),
    _num("ActualCost", "currency"),
    _readonly(_num("NumberOfLeads", "int")),
    _readonly(_num("NumberOfContacts", "int")),
    FieldDef("Description", "textarea", length=32000, filterable=False, sortable=False),
    _ref("OwnerId", "User", nillable=False),
    *_audit(),
])

CAMPAIGN_MEMBER = ObjectDef("CampaignMember", "Campaign Members", [
    _id(),
    _ref("CampaignId", "Campaign", updateable=False, nillable=False),
    _ref("LeadId", "Lead", updateable=False),
    _ref("ContactId", "Contact", updateable=False),
    _pick("Status", "Sent", "Responded", default="Sent"),
    _readonly(_bool("HasResponded", "Responded")),
    _readonly(FieldDef("FirstRespondedDate", "date")),
    _readonly(_str("Type", 40)),
    _readonly(_ref("LeadOrContactId", "Contact", "Lead", relationship="LeadOrContact")),
    _readonly(_str("FirstName", 40)),
    _readonly(_str("LastName", 80)),
    _readonly(_str("Name", 121, name_field=True)),
    _readonly(FieldDef("Email", "email", length=80)),
    _readonly(FieldDef("Phone", "phone", length=40)),
    _readonly(_str("Title", 128)),
    _readonly(_str("CompanyOrAccount", 255, "Company (Account)")),
    _readonly(_bool("HasOptedOutOfEmail", "Email Opt Out")),
    _readonly(_bool("DoNotCall", "Do Not Call")),
    *_audit(),
])

TASK = ObjectDef("Task", "Tasks", [
    _id(),
    _ref("WhoId", "Contact", "Lead", relationship="Who"),
    _ref("WhatId", "Account", "Campaign", "Opportunity", relationship="What"),
    FieldDef("Subject", "combobox", length=255, picklist=("Call", "Email", "Send Letter", "Send Quote", "Other")),
    FieldDef("ActivityDate", "date", "Due Date Only"),
    _pick("Status", "Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred",
          default="Not Started", nillable=False),
    _pick("Priority", "High", "Normal", "Low", default="Normal", nillable=False, length=20),
    _ref("OwnerId", "Group", "User", nillable=False),
    FieldDef("Description", "textarea", length=32000, filterable=False, sortable=False),
    _readonly(_bool("IsClosed", "Closed")),
    _pick("TaskSubtype", "Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn", updateable=False),
    _readonly(FieldDef("CompletedDateTime", "datetime")),
    *[f for f in _audit() if f.name not in ("LastActivityDate", "LastViewedDate", "LastReferencedDate")],
])

USER = ObjectDef("User", "Users", [
    _id(),
    _str("Username", 80, nillable=False, unique=True, id_lookup=True),
    _str("LastName", 80, nillable=False, compound_field_name="Name"),
    _str("FirstName", 40, compound_field_name="Name"),
    _readonly(_str("Name", 121, "Full Name", name_field=True)),
    FieldDef("Email", "email", length=128, nillable=False),
    _str("Alias", 8, nillable=False),
    _bool("IsActive", "Active", default=True),
    _pick("TimeZoneSidKey", "America/Los_Angeles", "America/New_York", "Europe/London", "Asia/Tokyo",
          nillable=False, label="Time Zone", length=40),
    *[f for f in _audit() if f.name not in ("IsDeleted", "LastActivityDate")],
])

STANDARD_OBJECTS: tuple[ObjectDef, ...] = (
    LEAD, CONTACT, CAMPAIGN_MEMBER, ACCOUNT, OPPORTUNITY, CAMPAIGN, TASK, USER,
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
