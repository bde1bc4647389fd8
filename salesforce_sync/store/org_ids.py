"""Salesforce organization ids in one canonical form, so 15- and 18-character spellings match."""

from __future__ import annotations

import re

from salesforce_sync.store.errors import StoreInputError

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ORG_ID = re.compile(r"00D[0-9A-Za-z]{12}(?:[0-9A-Z]{3})?")


def canonical_org_id(org_id: str) -> str:
    """Return the 18-character form of an org id (access tokens carry 15, identity URLs 18).

    The three extra characters encode, five characters at a time, which letters are upper case.
    """
    if not _ORG_ID.fullmatch(org_id):
        raise StoreInputError(
            f"Salesforce org id {org_id!r} is not valid: expected 15 or 18 letters/digits starting with '00D'"
        )
    base = org_id[:15]
    checksum = "".join(
        _CHECKSUM_ALPHABET[sum(1 << bit for bit, char in enumerate(base[start : start + 5]) if "A" <= char <= "Z")]
        for start in (0, 5, 10)
    )
    if len(org_id) == 18 and org_id[15:] != checksum:
        raise StoreInputError(
            f"Salesforce org id {org_id!r} has checksum {org_id[15:]!r}, expected {checksum!r} for {base!r}"
        )
    return base + checksum
