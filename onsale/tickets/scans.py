"""The door's log: every scan with its gate and device, the live counts a scanner shows, and
the fraud signals the organizer's dashboard shows.

Every online scan and every synced offline scan is one row of ``checkin_scans``, whatever
its answer. Two patterns are flagged: one ticket refused as already checked in again and
again (a photographed ticket passed along the line), and one device scanning faster than a
person at a door can (a script replaying codes).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg
import msgspec

from onsale.accounts.models import Caller, Role
from onsale.tickets import qr
from onsale.tickets.qr import InvalidTicket

log = logging.getLogger("onsale.tickets")

#: How far back the alerts look.
ALERT_WINDOW = timedelta(minutes=15)
#: Refused "already checked in" scans of one ticket in the window that make an alert.
DUPLICATE_SCANS = 3
#: Scans from one device within one minute that make an alert (a person manages ~20).
BURST_SCANS = 40
#: Events a scanner lists, at most.
MAX_EVENTS = 200


class ScanRow(msgspec.Struct, frozen=True):
    """One scan as logged."""

    qr: str
    result: str
    scanned_at: datetime
    gate: str | None = None
    device: str | None = None
    offline: bool = False


class DoorStats(msgspec.Struct):
    event_id: str
    #: Tickets checked in so far.
    checked_in: int
    #: Tickets that may come in (valid or already in): refunded and cancelled ones are not.
    expected: int
    #: Check-ins in the last minute.
    rate_per_minute: int
    at: datetime


class Alert(msgspec.Struct):
    #: ``duplicate_scans`` (one ticket) or ``scan_burst`` (one device).
    kind: str
    detail: str
    count: int
    last_seen: datetime
    ticket_id: str | None = None
    device: str | None = None
    gates: list[str] = msgspec.field(default_factory=list)


class ScanEvent(msgspec.Struct):
    """An event a person may scan at."""

    id: str
    title: str
    starts_at: datetime
    venue: str | None
    status: str


def _ticket_of(payload: str) -> uuid.UUID | None:
    try:
        ticket, _ = qr.parse(payload)
        return uuid.UUID(ticket)
    except (InvalidTicket, ValueError):
        return None


_RECORD = """
INSERT INTO checkin_scans (event_id, ticket_id, result, gate, device, offline, scanned_at)
SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::bool[],
                         $7::timestamptz[])
"""


async def record(pool: asyncpg.Pool, event_id: str, rows: Sequence[ScanRow]) -> None:
    """Log scans of an event (an event id known to be a UUID). Best effort: the scans are
    decided already, so a log that cannot be written is a warning, never a failed scan."""
    if not rows:
        return
    try:
        await pool.execute(
            _RECORD,
            uuid.UUID(event_id),
            [_ticket_of(r.qr) for r in rows],
            [r.result for r in rows],
            [r.gate for r in rows],
            [r.device for r in rows],
            [r.offline for r in rows],
            [r.scanned_at for r in rows],
        )
    except asyncpg.ForeignKeyViolationError:
        pass  # no such event (an admin's typo): nothing to log against
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        log.warning("scan log of event %s not written: %s", event_id, type(exc).__name__)


_STATS = """
SELECT count(*) FILTER (WHERE status = 'used') AS checked_in,
       count(*) FILTER (WHERE status IN ('valid', 'used')) AS expected,
       count(*) FILTER (WHERE status = 'used' AND checked_in_at > $2) AS last_minute
FROM tickets WHERE event_id = $1
"""


async def stats(pool: asyncpg.Pool, event_id: str, now: datetime) -> DoorStats:
    row = await pool.fetchrow(_STATS, uuid.UUID(event_id), now - timedelta(minutes=1))
    assert row is not None  # an aggregate always has its row
    return DoorStats(event_id, row["checked_in"], row["expected"], row["last_minute"], now)


_DUPLICATES = """
SELECT ticket_id::text AS ticket_id, count(*) AS n, max(scanned_at) AS last_seen,
       array_agg(DISTINCT gate) FILTER (WHERE gate IS NOT NULL) AS gates
FROM checkin_scans
WHERE event_id = $1 AND scanned_at > $2 AND result = 'already_checked_in'
  AND ticket_id IS NOT NULL
GROUP BY ticket_id HAVING count(*) >= $3
ORDER BY max(scanned_at) DESC LIMIT 20
"""
# Per device, its busiest minute in the window (scans in the minute after each scan).
_BURSTS = """
SELECT device, max(n) AS n, max(last_seen) AS last_seen,
       array_agg(DISTINCT gate) FILTER (WHERE gate IS NOT NULL) AS gates
FROM (
    SELECT device, gate, scanned_at AS last_seen,
           count(*) OVER (PARTITION BY device ORDER BY scanned_at
                          RANGE BETWEEN interval '1 minute' PRECEDING AND CURRENT ROW) AS n
    FROM checkin_scans
    WHERE event_id = $1 AND scanned_at > $2 AND device IS NOT NULL
) AS windowed
GROUP BY device HAVING max(n) >= $3
ORDER BY max(last_seen) DESC LIMIT 20
"""


async def alerts(pool: asyncpg.Pool, event_id: str, now: datetime) -> list[Alert]:
    """The fraud signals of the last :data:`ALERT_WINDOW`, newest first."""
    since = now - ALERT_WINDOW
    event = uuid.UUID(event_id)
    found: list[Alert] = []
    for row in await pool.fetch(_DUPLICATES, event, since, DUPLICATE_SCANS):
        gates = sorted(row["gates"] or [])
        at = f" at {', '.join(gates)}" if gates else ""
        found.append(
            Alert(
                "duplicate_scans",
                f"Ticket {row['ticket_id'][:8]} was presented again {row['n']} times{at} "
                "after it was checked in: copies of it may be going round.",
                row["n"],
                row["last_seen"],
                ticket_id=row["ticket_id"],
                gates=gates,
            )
        )
    for row in await pool.fetch(_BURSTS, event, since, BURST_SCANS):
        gates = sorted(row["gates"] or [])
        at = f" ({', '.join(gates)})" if gates else ""
        found.append(
            Alert(
                "scan_burst",
                f"Device {row['device'][:8]}{at} made {row['n']} scans within a minute: "
                "faster than a person at a door.",
                row["n"],
                row["last_seen"],
                device=row["device"],
                gates=gates,
            )
        )
    found.sort(key=lambda a: a.last_seen, reverse=True)
    return found


_EVENTS = """
SELECT e.id::text AS id, e.title, e.starts_at, e.venue_name AS venue, e.status::text AS status
FROM events e
WHERE ($1::uuid IS NULL
       OR ($2 AND e.organizer_id = $1)
       OR (NOT $2 AND EXISTS (SELECT 1 FROM event_staff s
                              WHERE s.event_id = e.id AND s.user_id = $1)))
  AND e.starts_at > $3
ORDER BY e.starts_at, e.id
LIMIT $4
"""


async def events_for(pool: asyncpg.Pool, caller: Caller, now: datetime) -> list[ScanEvent]:
    """The events ``caller`` may check tickets in at, soonest first: every event for an
    admin, one's own for an organizer, the assigned ones for staff. Events that started
    more than a day ago are left out (their doors have closed)."""
    user = None if caller.admin or caller.user_id is None else uuid.UUID(caller.user_id)
    owner = caller.role is not Role.STAFF
    rows = await pool.fetch(_EVENTS, user, owner, now - timedelta(days=1), MAX_EVENTS)
    return [ScanEvent(r["id"], r["title"], r["starts_at"], r["venue"], r["status"]) for r in rows]
