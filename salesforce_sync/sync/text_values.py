"""Text values a store cannot hold, made storable before mapping (pure, no I/O)."""

from __future__ import annotations

import pandas as pd

NUL = "\x00"
REPLACEMENT = "\ufffd"
"""U+FFFD, Unicode's mark for a character that could not be represented."""


def replace_nul(raw: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The raw text frame with every NUL replaced by U+FFFD (PostgreSQL text and JSON cannot hold NUL, so
    one such value would fail its whole chunk on every retry), and how many values changed. Every other
    character stays as Salesforce sent it. Frames without NUL come back untouched."""
    changed = 0
    repaired = raw
    for column in raw.columns:
        values = raw[column]
        if not _holds_nul(values):
            continue
        holds_nul = values.map(lambda value: isinstance(value, str) and NUL in value).astype(bool)
        if repaired is raw:
            repaired = raw.copy()
        repaired[column] = values.where(~holds_nul, values[holds_nul].str.replace(NUL, REPLACEMENT, regex=False))
        changed += int(holds_nul.sum())
    return repaired, changed


def _holds_nul(values: pd.Series) -> bool:
    """Whether any text of a column (object or string dtype) holds NUL: one join of the column, looked through once."""
    if values.dtype != object and not pd.api.types.is_string_dtype(values.dtype):
        return False
    texts = values.dropna().tolist()
    try:
        joined = "".join(texts)
    except TypeError:  # not only text
        joined = "".join(value for value in texts if isinstance(value, str))
    return NUL in joined
