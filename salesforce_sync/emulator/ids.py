"""Salesforce record ids: 15-character base-62 ids and their 18-character checksummed form."""

from __future__ import annotations

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

KEY_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "Lead": "00Q",
    "Task": "00T",
    "Event": "00U",
    "CampaignMember": "00v",
    "Campaign": "701",
    "CampaignMemberStatus": "01Y",
    "LeadStatus": "01J",
    "RecordType": "012",
    "Organization": "00D",
    "Group": "00G",
    "Calendar": "023",
    "Profile": "00e",
    "QueryLocator": "01g",
    "BulkJob": "750",
}
OBJECT_BY_PREFIX = {prefix: name for name, prefix in KEY_PREFIXES.items()}


def to18(id15: str) -> str:
    """Append Salesforce's case-safe checksum: one char per 5-char chunk, a bit per uppercase letter."""
    if len(id15) == 18:
        return id15
    if len(id15) != 15:
        raise ValueError(f"a Salesforce id has 15 or 18 characters, not {len(id15)}: {id15!r}")
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << j for j, c in enumerate(id15[start : start + 5]) if "A" <= c <= "Z")
        suffix += _CHECKSUM[bits]
    return id15 + suffix


def is_valid_id(value: str) -> bool:
    """True for a 15-char id of base-62 characters or an 18-char id whose checksum matches."""
    if len(value) not in (15, 18) or any(c not in _BASE62 for c in value):
        return False
    return len(value) == 15 or to18(value[:15]) == value


def normalize_id(value: str) -> str:
    """The 18-char form of a 15- or 18-char id (18-char ids compare case-insensitively)."""
    if len(value) == 18:
        return to18(value[:15]) if to18(value[:15]).lower() == value.lower() else value
    return to18(value)


def make_id(prefix: str, number: int, pod: str = "5g") -> str:
    """A deterministic 18-char id: 3-char key prefix, 2-char pod, '0', 9-char base-62 record number."""
    digits = []
    n = number
    for _ in range(9):
        n, r = divmod(n, 62)
        digits.append(_BASE62[r])
    if n:
        raise ValueError(f"record number {number} does not fit in 9 base-62 digits")
    return to18(prefix + pod + "0" + "".join(reversed(digits)))


def canonical_id(value: str) -> str | None:
    """The stored 18-char form of an id written in any letter case (18 chars) or exact case (15); else None.

    An 18-char id's checksum records which of its first 15 letters are upper case, so its case can be
    restored; SOQL compares ids case-insensitively this way.
    """
    if len(value) == 15:
        return to18(value) if is_valid_id(value) else None
    if len(value) != 18:
        return None
    restored = []
    for chunk, check in zip((value[0:5], value[5:10], value[10:15]), value[15:].upper()):
        bits = _CHECKSUM.find(check)
        if bits < 0:
            return None
        restored += [c.upper() if bits >> j & 1 else c.lower() for j, c in enumerate(chunk)]
    candidate = "".join(restored) + value[15:].upper()
    return candidate if is_valid_id(candidate) else None
