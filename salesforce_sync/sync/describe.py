"""Field paths checked against describe payloads: types for rules, health checks for mappings.

`describes` maps object API names to `/sobjects/<Object>/describe` bodies (only their `fields` list
is read). Relationship paths (`Account.Name`, `Lead.HasOptedOutOfEmail`) go through the reference
field whose `relationshipName` matches, into the describes of its `referenceTo` objects. A caller
that cannot describe a related object (e.g. a polymorphic target the org lacks) stores `{}` for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from salesforce_sync.config.models import OPT_OUT_PROPERTY, FieldMapping
from salesforce_sync.sync.field_types import natural_property_type, salesforce_type_fits

Describes = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class FieldInfo:
    """A resolved field: its path in the describe's spelling and what the describe says about it."""

    path: str
    type: str
    label: str
    filterable: bool
    #: A formula field (describe's `calculated`): Salesforce computes it on read, so its value can change
    #: while the record's LastModifiedDate stays.
    calculated: bool = False


@dataclass(frozen=True)
class MappingProblem:
    """Why a mapping cannot sync; `suggestion` is the API name that probably replaced a missing field."""

    field: str
    property: str
    message: str
    suggestion: str | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class _Walk:
    info: FieldInfo | None
    owners: tuple[str, ...]  # objects the last path segment was looked up on
    prefix: str  # relationship part of the path in the describe's spelling, e.g. "Account."
    undescribed: frozenset[str]


def _fields(describes: Describes, object_name: str) -> list[Mapping[str, Any]] | None:
    for name, describe in describes.items():
        if name.lower() == object_name.lower():
            return list(describe.get("fields", ()))
    return None


def _walk(object_type: str, path: str, describes: Describes) -> _Walk:
    *relationships, leaf = path.split(".")
    owners: tuple[str, ...] = (object_type,)
    prefix = ""
    undescribed: set[str] = set()
    for relationship in relationships:
        reference = None
        targets: list[str] = []
        for owner in owners:
            fields = _fields(describes, owner)
            if fields is None:
                undescribed.add(owner)
                continue
            match = next((f for f in fields if (f.get("relationshipName") or "").lower() == relationship.lower()), None)
            if match is not None:
                reference = reference or match
                targets += [t for t in match.get("referenceTo", ()) if t not in targets]
        if reference is None:  # no such relationship: nothing to suggest a leaf from
            return _Walk(None, (), prefix, frozenset(undescribed))
        prefix += f"{reference['relationshipName']}."
        owners = tuple(targets)
    for owner in owners:
        fields = _fields(describes, owner)
        if fields is None:
            undescribed.add(owner)
            continue
        match = next((f for f in fields if str(f.get("name", "")).lower() == leaf.lower()), None)
        if match is not None:
            info = FieldInfo(prefix + match["name"], match.get("type", ""), match.get("label", ""),
                             bool(match.get("filterable", True)), bool(match.get("calculated", False)))
            return _Walk(info, owners, prefix, frozenset(undescribed))
    return _Walk(None, owners, prefix, frozenset(undescribed))


def objects_to_describe(object_type: str, paths: Iterable[str], describes: Describes) -> set[str]:
    """Objects the paths lead through whose describe is not in `describes` yet; describe them and ask again."""
    needed: set[str] = set()
    for path in paths:
        needed |= _walk(object_type, path, describes).undescribed
    return needed


def field_infos(object_type: str, paths: Iterable[str], describes: Describes) -> dict[str, FieldInfo]:
    """FieldInfo per requested path that exists (keyed by the path as requested); unknown paths are left out."""
    out: dict[str, FieldInfo] = {}
    for path in paths:
        info = _walk(object_type, path, describes).info
        if info is not None:
            out[path] = info
    return out


def field_types(object_type: str, paths: Iterable[str], describes: Describes) -> dict[str, str]:
    """{canonical path: describe type} for `rules_to_where`."""
    return {info.path: info.type for info in field_infos(object_type, paths, describes).values()}


def label_from_api_name(api_name: str) -> str:
    """The label Salesforce proposes for an API name: 'Lead_Score__c' -> 'Lead Score'."""
    name = api_name.removesuffix("__c").replace("_", " ")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).strip()


def validate_mappings(
    object_type: str,
    mappings: Sequence[FieldMapping],
    describes: Describes,
    *,
    previous_labels: Mapping[str, str] | None = None,
) -> list[MappingProblem]:
    """Problems that stop mappings from syncing: missing fields, types that do not fit, a non-boolean opt-out.

    A missing field whose label (from `previous_labels`, else derived from its API name) is now
    carried by another field was most likely renamed: that field's API name is suggested.
    """
    problems: list[MappingProblem] = []
    for mapping in mappings:
        for path in mapping.fields:
            walk = _walk(object_type, path, describes)
            if walk.info is None:
                problems.append(_missing(object_type, path, mapping, walk, describes, previous_labels or {}))
                continue
            problem = _type_problem(object_type, mapping, walk.info)
            if problem is not None:
                problems.append(problem)
    return problems


def _type_problem(object_type: str, mapping: FieldMapping, info: FieldInfo) -> MappingProblem | None:
    where = f"{object_type}.{info.path}"
    if mapping.property == OPT_OUT_PROPERTY and info.type != "boolean":
        return MappingProblem(info.path, mapping.property,
                              f"the opt-out property '{OPT_OUT_PROPERTY}' needs a boolean field, but {where} is {info.type}")
    if salesforce_type_fits(info.type, mapping.type):
        return None
    natural = natural_property_type(info.type)
    if natural is None:
        hint = " (this field type cannot be synced)"
    else:
        hint = " (it fits string)" if natural == "string" else f" (it fits {natural} or string)"
    return MappingProblem(info.path, mapping.property,
                          f"{where} is {info.type}, which does not fit the {mapping.type} property '{mapping.property}'{hint}")


def _missing(
    object_type: str, path: str, mapping: FieldMapping, walk: _Walk, describes: Describes,
    previous_labels: Mapping[str, str],
) -> MappingProblem:
    leaf = path.rsplit(".", 1)[-1]
    message = f"{object_type}.{path} (property '{mapping.property}') does not exist in the org"
    if walk.undescribed:
        return MappingProblem(path, mapping.property,
                              f"{message}, or its object is not described: {', '.join(sorted(walk.undescribed))}")
    label = (previous_labels.get(path) or label_from_api_name(leaf)).casefold()
    for owner in walk.owners:
        for field in _fields(describes, owner) or ():
            if str(field.get("label", "")).casefold() == label and field.get("name", "").lower() != leaf.lower():
                suggestion = walk.prefix + field["name"]
                return MappingProblem(
                    path, mapping.property,
                    f"{message}; {owner}.{field['name']} has the same label '{field['label']}', "
                    f"probably its new name: map '{suggestion}' instead",
                    suggestion,
                )
    return MappingProblem(path, mapping.property, message)
