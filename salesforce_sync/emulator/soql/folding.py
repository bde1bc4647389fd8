"""Case-insensitive text matching for all of Unicode, as SOQL's `=`, `!=`, `IN` and `LIKE` compare text.

SQLite's NOCASE and LIKE fold ASCII only, so `'MATHÉO'` would miss `'Mathéo'`. Values compare by Python's
`str.casefold()` (so `ß` matches `SS`; Salesforce folds by the querying user's locale, which is UNCONFIRMED for
such pairs). Scans stay fast: a row whose text is printable ASCII, the common case, is compared by SQLite's own
NOCASE or LIKE, which agree with casefold there; only rows holding another character reach the Python functions
that `register_functions` adds to a connection.
"""

from __future__ import annotations

import functools
import re
import sqlite3

FOLD_FUNCTION = "soql_casefold"
LIKE_FUNCTION = "soql_like"
# GLOB pattern true for text holding any character outside printable ASCII (space to tilde)
NOT_PRINTABLE_ASCII = "'*[^ -~]*'"


def register_functions(conn: sqlite3.Connection) -> None:
    """Add the functions compiled SOQL calls for non-ASCII text to a connection of the org's database."""
    conn.create_function(FOLD_FUNCTION, 1, _casefold, deterministic=True)
    conn.create_function(LIKE_FUNCTION, 2, _like, deterministic=True)


_PRINTABLE_ASCII = re.compile("[ -~]*")


def is_printable_ascii(text: str) -> bool:
    """True when every character is printable ASCII, where SQLite's NOCASE and LIKE already fold correctly."""
    return _PRINTABLE_ASCII.fullmatch(text) is not None


def _casefold(value: str | None) -> str | None:
    return value.casefold() if isinstance(value, str) else value


def _like(value: str | None, pattern: str) -> bool | None:
    """`value LIKE pattern ESCAPE '\\'` with both sides casefolded; `pattern` is already folded."""
    if not isinstance(value, str):
        return None
    return _like_regex(pattern).fullmatch(value.casefold()) is not None


@functools.lru_cache(maxsize=256)
def _like_regex(pattern: str) -> re.Pattern[str]:
    """A SQLite LIKE pattern (`%`, `_`, `\\` escapes) as a regular expression."""
    parts = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)
