"""Fields the org added to an object since its mappings were written, and mappings for the new custom ones.

Pure: the baseline (the object's field names when its settings fingerprint was recorded) and the current
describe come in; the health check in runs/health.py reads and records them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from salesforce_sync.config.models import STORE_COLUMN_TYPES, FieldMapping, PropertyType

CUSTOM_SUFFIX = "__c"
#: Describe field types a new custom field is mapped by; other types (references, addresses, ...) are listed
#: as new but not mapped.
AUTO_MAP_TYPES: dict[str, PropertyType] = {
    **dict.fromkeys(("string", "picklist", "email", "phone", "url", "textarea"), "string"),
    **dict.fromkeys(("double", "currency", "percent", "int"), "number"),
    "boolean": "boolean",
    **dict.fromkeys(("date", "datetime"), "date"),
    "multipicklist": "array",
}


@dataclass(frozen=True)
class NewField:
    name: str
    type: str

    @property
    def custom(self) -> bool:
        return self.name.lower().endswith(CUSTOM_SUFFIX)


def field_names(describe: Mapping[str, Any]) -> tuple[str, ...]:
    """The object's field API names, as the describe spells them."""
    return tuple(str(info["name"]) for info in describe.get("fields", ()))


def new_fields(describe: Mapping[str, Any], baseline: Iterable[str], mappings: Sequence[FieldMapping]) -> list[NewField]:
    """Fields of the describe neither in the baseline nor mapped (compared case-insensitively), custom fields
    first, then by name."""
    known = {name.lower() for name in baseline}
    known |= {path.lower() for mapping in mappings for path in mapping.fields if "." not in path}
    found = [NewField(str(info["name"]), str(info.get("type", ""))) for info in describe.get("fields", ())
             if str(info["name"]).lower() not in known]
    return sorted(found, key=lambda new: (not new.custom, new.name.lower()))


def property_name(api_name: str) -> str:
    """`Favorite_Color__c` -> `favorite_color`, `AnnualSpend__c` -> `annual_spend`."""
    base = api_name[:-len(CUSTOM_SUFFIX)] if api_name.lower().endswith(CUSTOM_SUFFIX) else api_name
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", base)
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", snake.lower())).strip("_")


def auto_mappings(fields: Iterable[NewField], mappings: Sequence[FieldMapping]) -> tuple[FieldMapping, ...]:
    """Mappings for the new custom fields whose describe type maps to a property type, named from the API name;
    a field whose name is taken (a mapping, a store column) or not a valid property name is left for people."""
    taken = {mapping.property for mapping in mappings} | set(STORE_COLUMN_TYPES)
    added: list[FieldMapping] = []
    for new in fields:
        kind = AUTO_MAP_TYPES.get(new.type)
        name = property_name(new.name)
        if not new.custom or kind is None or name in taken:
            continue
        try:
            added.append(FieldMapping(fields=(new.name,), property=name, type=kind))
        except ValidationError:  # a name no property may have (reserved, or not starting with a letter)
            continue
        taken.add(name)
    return tuple(added)
