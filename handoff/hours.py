"""Business hours: when agents are expected, so the bot can tell users honestly."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_SPEC = re.compile(r"^(\w{3})(?:-(\w{3}))?\s+(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


def parse_hours(spec: str) -> dict[int, tuple[time, time]]:
    """Parses "Mon-Fri 08:00-18:00; Sat 10:00-14:00" into weekday -> (open, close).

    Raises:
        ValueError: with the part that could not be read.
    """
    hours: dict[int, tuple[time, time]] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        match = _SPEC.match(part.lower())
        if not match or match.group(1) not in DAYS or (match.group(2) and match.group(2) not in DAYS):
            raise ValueError(f"cannot read business hours {part!r}; write e.g. 'Mon-Fri 08:00-18:00'")
        first = DAYS.index(match.group(1))
        last = DAYS.index(match.group(2)) if match.group(2) else first
        opens = time(int(match.group(3)), int(match.group(4)))
        closes = time(int(match.group(5)), int(match.group(6)))
        for day in range(first, last + 1):
            hours[day] = (opens, closes)
    return hours


def next_opening(spec: str, timezone: str, now: datetime | None = None) -> datetime | None:
    """None while open; otherwise when the service desk opens next (aware datetime)."""
    zone = ZoneInfo(timezone)
    local = (now or datetime.now(zone)).astimezone(zone)
    hours = parse_hours(spec)
    if not hours:
        return None
    today = hours.get(local.weekday())
    if today and today[0] <= local.time() < today[1]:
        return None
    for offset in range(0, 8):
        day = local.date() + timedelta(days=offset)
        window = hours.get(day.weekday())
        if window is None:
            continue
        opening = datetime.combine(day, window[0], tzinfo=zone)
        if opening > local:
            return opening
    return None
