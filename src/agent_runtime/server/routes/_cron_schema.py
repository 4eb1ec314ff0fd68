"""What the OpenAPI document says a schedule's ``schedule`` and ``timezone`` accept, so that clients
and schema fuzzers see the server's real rules: five cron fields of ``*``, numbers in range, ranges,
lists, steps and month / weekday names; an IANA zone name of this server's tz database. The check
itself stays in ``agent_runtime.crons`` (its 422 names the field); croniter accepts a little more
(``L``, ``#``, ``?``), and an expression that never fires (``0 0 30 2 *``) is refused there too.
"""

from __future__ import annotations

from typing import Any, Final
from zoneinfo import available_timezones

__all__ = ["SCHEDULE_SCHEMA", "TIMEZONE_SCHEMA"]

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def _names(names: tuple[str, ...]) -> str:
    return "|".join(f"{n}|{n.lower()}|{n.capitalize()}" for n in names)


def _field(value: str) -> str:
    item = f"(?:\\*|(?:{value})(?:-(?:{value}))?)(?:/[1-9][0-9]?)?"
    return f"{item}(?:,{item})*"


_FIELDS = (
    "[1-5]?[0-9]",
    "[01]?[0-9]|2[0-3]",
    "0?[1-9]|[12][0-9]|3[01]",
    f"0?[1-9]|1[0-2]|{_names(_MONTHS)}",
    f"[0-7]|{_names(_DAYS)}",
)
SCHEDULE_PATTERN: Final = "^" + " ".join(_field(value) for value in _FIELDS) + "$"
SCHEDULE_SCHEMA: Final[dict[str, Any]] = {"pattern": SCHEDULE_PATTERN, "examples": ["*/15 * * * *", "0 9 * * MON-FRI"]}
TIMEZONE_SCHEMA: Final[dict[str, Any]] = {"enum": sorted(available_timezones()), "examples": ["UTC", "Europe/Paris"]}
