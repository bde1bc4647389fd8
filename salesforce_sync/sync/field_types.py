"""Salesforce describe field types, grouped the way the store's property types see them."""

from __future__ import annotations

from salesforce_sync.config.models import PropertyType

#: Text-like describe types; `id`/`reference` are text too but cannot be matched with LIKE.
TEXT_TYPES = frozenset({
    "string", "picklist", "email", "phone", "url", "textarea", "combobox", "encryptedstring", "id", "reference",
})
LIKE_TYPES = TEXT_TYPES - {"id", "reference"}
NUMBER_TYPES = frozenset({"int", "long", "double", "currency", "percent"})
DATE_TYPES = frozenset({"date", "datetime"})
MULTIPICKLIST = "multipicklist"


def natural_property_type(salesforce_type: str) -> PropertyType | None:
    """The property type a field of this describe type converts to; None for unsyncable types (address, base64)."""
    if salesforce_type in TEXT_TYPES:
        return "string"
    if salesforce_type in NUMBER_TYPES:
        return "number"
    if salesforce_type == "boolean":
        return "boolean"
    if salesforce_type in DATE_TYPES:
        return "date"
    if salesforce_type == MULTIPICKLIST:
        return "array"
    return None


def salesforce_type_fits(salesforce_type: str, property_type: PropertyType) -> bool:
    """Whether values of a field can feed a property: its natural type, or string from any syncable field."""
    natural = natural_property_type(salesforce_type)
    return natural is not None and (property_type == natural or property_type == "string")
