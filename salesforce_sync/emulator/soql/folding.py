"""Case-insensitive text matching for all of Unicode, as SOQL's `=`, `!=`, `IN` and `LIKE` compare text.

SQLite's NOCASE and LIKE fold ASCII only, so `'MATHÉO'` would miss `'Mathéo'`. Values compare by Python's
`str.casefold()` (so `ß` matches `SS`; Salesforce folds by the querying user's locale, which is UNCONFIRMED for
such pairs). Scans stay fast: an ASCII row, the common case, is compared by SQLite's own NOCASE or LIKE, which
agree with casefold there; a row holding another character reaches the Python functions `register_functions`
adds to a connection only when its first character can fold to the start of a wanted value.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterable

FOLD_FUNCTION = "soql_casefold"
LIKE_FUNCTION = "soql_like"
_LAST_CASED_CODEPOINT = 0x1F000  # no character from here on changes under casefold


def register_functions(conn: sqlite3.Connection) -> None:
    """Add the functions compiled SOQL calls for non-ASCII text to a connection of the org's database."""
    conn.create_function(FOLD_FUNCTION, 1, _casefold, deterministic=True)
    conn.create_function(LIKE_FUNCTION, 2, _like, deterministic=True)


def non_ascii(column: str) -> str:
    """SQL true when the text in `column` holds a character outside ASCII (more UTF-8 bytes than characters)."""
    return f"length(CAST({column} AS BLOB)) > length({column})"


def may_fold_to(column: str, folded: Iterable[str], *, like: bool = False) -> str:
    """SQL true for non-ASCII text whose first character can fold to the start of one of the `folded` values
    (LIKE patterns with `like`): the cheap test that spares the Python call on every other row."""
    starts: set[int] = set()
    for value in folded:
        literal = _literal_prefix(value) if like else value
        if not literal:
            return non_ascii(column)  # a pattern starting with a wildcard: any first character
        starts.add(ord(literal[0]))
        starts.update(cp for cp in _codepoints_by_fold_start().get(literal[0], ())
                      if chr(cp).casefold().startswith(literal) or literal.startswith(chr(cp).casefold()))
    return f"unicode({column}) IN ({', '.join(map(str, sorted(starts)))}) AND {non_ascii(column)}"


@functools.cache
def _codepoints_by_fold_start() -> dict[str, tuple[int, ...]]:
    """Every code point that casefold changes, by the first character of its fold ('s' -> S, ſ, ß, ẞ, ﬅ, ﬆ)."""
    index: dict[str, list[int]] = defaultdict(list)
    for cp in range(_LAST_CASED_CODEPOINT):
        char = chr(cp)
        folded = char.casefold()
        if folded != char:
            index[folded[0]].append(cp)
    return {start: tuple(cps) for start, cps in index.items()}


def _literal_prefix(pattern: str) -> str:
    """The text a LIKE pattern starts with, up to its first wildcard, escapes removed."""
    prefix = []
    escaped = False
    for char in pattern:
        if not escaped and char == "\\":
            escaped = True
        elif not escaped and char in "%_":
            break
        else:
            prefix.append(char)
            escaped = False
    return "".join(prefix)


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
