"""The optional ``from``/``to`` of reports and exports: ISO 8601 times, ``from`` inclusive,
``to`` exclusive. Reports count sales by their minute, so their bounds fall to the minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from onsale.reports.errors import ReportRejected, ReportRejection

#: Stand-ins for an open end (Postgres takes them as -infinity/infinity would be: any time).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)


class Period(msgspec.Struct, frozen=True):
    start: datetime | None = None
    end: datetime | None = None

    @property
    def low(self) -> datetime:
        return self.start or EARLIEST

    @property
    def high(self) -> datetime:
        return self.end or LATEST

    def minutes(self) -> tuple[datetime, datetime]:
        """The bounds as minutes of sale: ``from`` down to its minute, ``to`` up to its
        minute (a minute counts when any of it is inside)."""
        low = self.low.replace(second=0, microsecond=0)
        high = self.high
        if high.second or high.microsecond:
            high = high.replace(second=0, microsecond=0) + _MINUTE
        return low, high

    def params(self) -> dict[str, str]:
        out = {}
        if self.start:
            out["from"] = self.start.isoformat()
        if self.end:
            out["to"] = self.end.isoformat()
        return out


def _time(name: str, raw: str | None) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        text = raw.strip().replace("Z", "+00:00")
        if "T" in text:  # an unencoded "+01:00" in a query string arrives as " 01:00"
            text = text.replace(" ", "+")
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ReportRejected(
            ReportRejection.INVALID_RANGE, f"{name} must be an ISO 8601 time (2026-05-01T10:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # a naive time is UTC, as on the wire
    if not EARLIEST <= when < LATEST:
        raise ReportRejected(ReportRejection.INVALID_RANGE, f"{name} is out of range")
    return when.astimezone(UTC)


def parse(start: str | None, end: str | None) -> Period:
    """The period of a request's ``from`` and ``to``; :class:`ReportRejected` otherwise."""
    period = Period(_time("from", start), _time("to", end))
    if period.start and period.end and period.start >= period.end:
        raise ReportRejected(ReportRejection.INVALID_RANGE, "from must be before to")
    return period
