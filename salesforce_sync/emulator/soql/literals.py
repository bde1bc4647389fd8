"""SOQL literal values: string escapes, date and datetime literals, relative date ranges."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from salesforce_sync.emulator.soql.syntax import Literal, SoqlProblem

_SIMPLE_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_LIKE_ESCAPES = {"%": "\\%", "_": "\\_", "\\": "\\\\"}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.S)


def decode_string(literal: Literal, *, like: bool) -> str:
    """The text of a quoted string; with `like`, a SQLite LIKE pattern whose escape character is `\\`.

    Salesforce allows \\' \\" \\\\ \\n \\r \\t \\b \\f (either case) and \\uXXXX; in LIKE also \\% and \\_.
    Any other backslash sequence is an error.
    """
    body = literal.text[1:-1]

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 5:
            char = chr(int(code[1:], 16))
            return _LIKE_ESCAPES.get(char, char) if like else char
        if like and code in _LIKE_ESCAPES:
            return _LIKE_ESCAPES[code]
        simple = _SIMPLE_ESCAPES.get(code if code in "'\"\\" else code.lower())
        if simple is None:
            raise SoqlProblem(
                "MALFORMED_QUERY",
                f"Invalid string literal '{body}'. Illegal character sequence '\\{code}' in string literal.",
                literal.line, literal.column)
        return simple

    return _ESCAPE.sub(replace, body)


def parse_date(literal: Literal) -> date:
    """A bare `YYYY-MM-DD` literal as a date."""
    try:
        return date.fromisoformat(literal.text)
    except ValueError:
        raise SoqlProblem("MALFORMED_QUERY", f"invalid date: {literal.text}", literal.line, literal.column) from None


_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:(Z)|([+-])(\d{2}):?(\d{2}))", re.I)


def parse_datetime_ms(literal: Literal) -> int:
    """A bare datetime literal (`Z`, `+hh:mm`, `-hhmm`, 0-6 fractional digits) as UTC epoch milliseconds."""
    match = _DATETIME.fullmatch(literal.text)
    try:
        if match is None:
            raise ValueError(literal.text)
        year, month, day, hour, minute, second, fraction, _z, sign, off_h, off_m = match.groups()
        offset = timedelta(0)
        if sign:
            offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (1 if sign == "+" else -1)
        micros = int((fraction or "").ljust(6, "0"))
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micros,
                          tzinfo=timezone(offset))
    except ValueError:
        raise SoqlProblem("MALFORMED_QUERY", f"invalid datetime: {literal.text}", literal.line,
                          literal.column) from None
    return epoch_ms(moment)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since 1970-01-01 UTC (naive datetimes are taken as UTC), truncating microseconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@dataclass(frozen=True)
class DateRange:
    """A relative date literal resolved against `now`: days [first_day, end_day) and instants [start_ms, end_ms)."""

    first_day: date
    end_day: date
    start_ms: int
    end_ms: int


_PERIODS = {"WEEK": "WEEK", "MONTH": "MONTH", "QUARTER": "QUARTER", "YEAR": "YEAR",
            "FISCAL_QUARTER": "QUARTER", "FISCAL_YEAR": "YEAR"}
_PLURAL_PERIODS = {"DAYS": "DAY", "WEEKS": "WEEK", "MONTHS": "MONTH", "QUARTERS": "QUARTER", "YEARS": "YEAR",
                   "FISCAL_QUARTERS": "QUARTER", "FISCAL_YEARS": "YEAR"}
_DAY_WORDS = {"YESTERDAY": ("LAST", "DAY"), "TODAY": ("THIS", "DAY"), "TOMORROW": ("NEXT", "DAY")}
_NINETY_DAYS = {"LAST_90_DAYS": "LAST_N_DAYS:90", "NEXT_90_DAYS": "NEXT_N_DAYS:90"}
_RELATIVE = re.compile(r"(?:(LAST|THIS|NEXT)_([A-Z_]+?)|(LAST|NEXT)_N_([A-Z_]+?):(\d+)|N_([A-Z_]+?)_AGO:(\d+))")


def relative_range(literal: Literal, now: datetime) -> DateRange:
    """YESTERDAY, THIS_MONTH, LAST_N_DAYS:30, N_WEEKS_AGO:2, ... as a UTC range around `now`.

    Weeks start on Sunday and fiscal periods follow the calendar (Salesforce's defaults).
    LAST_N_DAYS:n runs from 00:00 of today-n through now, so it includes today.
    """
    text = literal.text.upper()
    text = _NINETY_DAYS.get(text, text)
    match = _RELATIVE.fullmatch(text)
    if text in _DAY_WORDS:
        direction, unit = _DAY_WORDS[text]
    elif match and match.group(1):
        direction, unit = match.group(1), _PERIODS.get(match.group(2))
    elif match and match.group(3):
        direction, unit, n = match.group(3) + "_N", _PLURAL_PERIODS.get(match.group(4)), int(match.group(5))
    elif match:
        direction, unit, n = "AGO", _PLURAL_PERIODS.get(match.group(6)), int(match.group(7))
    else:
        unit = None
    if unit is None:
        raise SoqlProblem("MALFORMED_QUERY", f"unexpected token: '{literal.text}'", literal.line, literal.column)
    now_utc = now.astimezone(timezone.utc) if now.tzinfo else now.replace(tzinfo=timezone.utc)
    today = now_utc.date()
    current = _period_start(unit, today)
    if direction in ("LAST", "THIS", "NEXT"):
        step = {"LAST": -1, "THIS": 0, "NEXT": 1}[direction]
        first, end = _shift(unit, current, step), _shift(unit, current, step + 1)
    elif direction == "LAST_N" and unit == "DAY":
        first = today - timedelta(days=n)
        return DateRange(first, today + timedelta(days=1), _day_ms(first), epoch_ms(now_utc) + 1)
    elif direction == "LAST_N":
        first, end = _shift(unit, current, -n), current
    elif direction == "NEXT_N":
        first, end = _shift(unit, current, 1), _shift(unit, current, n + 1)
    else:
        first, end = _shift(unit, current, -n), _shift(unit, current, 1 - n)
    return DateRange(first, end, _day_ms(first), _day_ms(end))


def _period_start(unit: str, day: date) -> date:
    if unit == "DAY":
        return day
    if unit == "WEEK":
        return day - timedelta(days=(day.weekday() + 1) % 7)
    if unit == "MONTH":
        return day.replace(day=1)
    if unit == "QUARTER":
        return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return date(day.year, 1, 1)


def _shift(unit: str, start: date, count: int) -> date:
    """The start of the period `count` periods after the one starting at `start`."""
    if unit == "DAY":
        return start + timedelta(days=count)
    if unit == "WEEK":
        return start + timedelta(weeks=count)
    months = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}[unit] * count
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _day_ms(day: date) -> int:
    return (day - date(1970, 1, 1)).days * 86_400_000
