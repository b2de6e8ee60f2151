"""Check-in at the door: first scan wins, online at once or offline and synced later.

Postgres is the authority: an online scan is one conditional ``UPDATE``, so of any number
of concurrent scans of a ticket exactly one finds it unused. A ticket confirmed a moment
ago, not yet written by the committer, is committed from Redis first (``uncommitted``).
Offline scanners verify signatures with the public keys alone and upload their scans; the
earliest scan of a ticket, by scan time, is its check-in.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import asyncpg
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from msgspec import Meta

from onsale.connections import RedisClient
from onsale.events.errors import EventRejected, EventRejection
from onsale.text import LINE
from onsale.tickets import qr, uncommitted
from onsale.tickets.errors import TicketRejected, TicketRejection
from onsale.tickets.qr import InvalidTicket

#: Scans one offline sync may carry.
MAX_SYNC_SCANS = 1000
#: Manifest rows fetched from the cursor, and sent, at a time.
MANIFEST_CHUNK = 1000

QrText = Annotated[str, Meta(min_length=1, max_length=200)]
#: Names that are stored as text: one line, no control character (Postgres refuses U+0000).
Scanner = Annotated[str, Meta(max_length=100), LINE]
#: A door's name ("North gate") and a scanning device's own id, as the scanner app sends them.
Gate = Annotated[str, Meta(max_length=60), LINE]
Device = Annotated[str, Meta(max_length=64), LINE]


class Outcome(StrEnum):
    CHECKED_IN = "checked_in"
    ALREADY_CHECKED_IN = "already_checked_in"
    INVALID_TICKET = "invalid_ticket"
    WRONG_EVENT = "wrong_event"
    #: Refunded or cancelled.
    NOT_VALID = "not_valid"
    #: Genuinely signed, but not in Postgres yet (the committer lags): sync it again later.
    NOT_FOUND = "not_found"


class CheckInIn(msgspec.Struct, forbid_unknown_fields=True):
    event_id: Annotated[str, Meta(max_length=64)]
    qr: QrText
    scanner: Scanner | None = None
    gate: Gate | None = None
    device: Device | None = None


class CheckedIn(msgspec.Struct):
    ticket_id: str
    tier_id: str
    attendee_name: str
    checked_in_at: datetime
    checked_in_by: str | None
    gate: str | None = None


class Scan(msgspec.Struct, forbid_unknown_fields=True):
    qr: QrText
    scanned_at: Annotated[datetime, Meta(tz=True)]
    scanner: Scanner | None = None
    gate: Gate | None = None
    device: Device | None = None


class SyncIn(msgspec.Struct, forbid_unknown_fields=True):
    event_id: Annotated[str, Meta(max_length=64)]
    scans: Annotated[list[Scan], Meta(max_length=MAX_SYNC_SCANS)]


class ScanResult(msgspec.Struct):
    qr: str
    ticket_id: str | None
    result: Outcome
    #: The ticket's check-in (the earliest scan) after this sync, when it has one.
    checked_in_at: datetime | None = None
    checked_in_by: str | None = None
    #: The gate of that check-in.
    gate: str | None = None


class SyncOut(msgspec.Struct):
    event_id: str
    results: list[ScanResult]


class ManifestTicket(msgspec.Struct):
    ticket_id: str
    tier_id: str
    attendee_name: str
    status: str
    checked_in_at: datetime | None
    checked_in_gate: str | None


def event_uuid(value: str) -> str:
    """The canonical form of an event id from a body: tickets are signed over exactly it."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise TicketRejected(TicketRejection.INVALID_EVENT_ID, "event_id is not a UUID") from None


def _genuine_elsewhere(public: Ed25519PublicKey, payload: str, event_id: str, other: Any) -> bool:
    """A ticket of ``other`` whose signature verifies there: a real ticket, wrong door."""
    if other is None or str(other) == event_id:
        return False
    try:
        qr.verify(public, payload, str(other))
    except InvalidTicket:
        return False
    return True


_CHECK_IN = """
UPDATE tickets SET status = 'used', checked_in_at = now(), checked_in_by = $3,
                   checked_in_gate = $4
WHERE id = $1 AND event_id = $2 AND status = 'valid' AND checked_in_at IS NULL
RETURNING id, tier_id, attendee_name, checked_in_at, checked_in_by, checked_in_gate
"""
_TICKET = """
SELECT id, event_id, tier_id, status::text AS status, checked_in_at, checked_in_by,
       checked_in_gate
FROM tickets WHERE id = $1
"""


async def check_in(
    pool: asyncpg.Pool,
    public: Ed25519PublicKey,
    event_id: str,
    payload: str,
    scanner: str | None = None,
    *,
    redis: RedisClient = None,
    gate: str | None = None,
) -> CheckedIn:
    """Check a ticket in, or say exactly why not (:class:`TicketRejected`).

    With ``redis``, a genuine ticket Postgres does not know yet is looked for among the
    orders the committer has not written, and its order committed first
    (:mod:`onsale.tickets.uncommitted`): a ticket bought a moment ago gets in at once.
    """
    try:
        ticket, _ = qr.parse(payload)
    except InvalidTicket as exc:
        raise TicketRejected(TicketRejection.INVALID_TICKET, str(exc)) from None
    try:
        qr.verify(public, payload, event_id)
    except InvalidTicket:
        other = await pool.fetchval("SELECT event_id FROM tickets WHERE id = $1", ticket)
        if _genuine_elsewhere(public, payload, event_id, other):
            raise TicketRejected(
                TicketRejection.WRONG_EVENT, facts={"event_id": str(other)}
            ) from None
        raise TicketRejected(
            TicketRejection.INVALID_TICKET, "the signature does not verify"
        ) from None
    # A few rounds at most: a ticket written (by the committer, or by us from Redis)
    # between our statements is tried again.
    looked_in_redis = redis is None
    for _ in range(3):
        row = await pool.fetchrow(_CHECK_IN, ticket, event_id, scanner, gate)
        if row is not None:
            return CheckedIn(
                str(row["id"]),
                str(row["tier_id"]),
                row["attendee_name"],
                row["checked_in_at"],
                row["checked_in_by"],
                row["checked_in_gate"],
            )
        # Read after the UPDATE: a concurrent first scan has committed by now (the UPDATE
        # waited for its row lock), so this shows who won.
        current = await pool.fetchrow(_TICKET, ticket)
        if current is None and not looked_in_redis:
            # Not in Postgres: sold a moment ago? Then its order is committed now, and
            # the same conditional UPDATE decides, so the first scan still wins, once.
            looked_in_redis = True
            await uncommitted.commit_recent(pool, redis, event_id, [ticket])
            continue
        _refuse(current, event_id)
    raise TicketRejected(TicketRejection.CHANGED, "the ticket changed during check-in; scan again")


def _refuse(row: asyncpg.Record | None, event_id: str) -> None:
    """Raise why a genuine ticket was not checked in; return if it now looks checkable."""
    if row is None:
        raise TicketRejected(
            TicketRejection.NOT_FOUND,
            "the ticket is genuine but not recorded yet; scan again in a few seconds",
        )
    if str(row["event_id"]) != event_id:
        raise TicketRejected(TicketRejection.WRONG_EVENT, facts={"event_id": str(row["event_id"])})
    if row["status"] == "used":
        raise TicketRejected(
            TicketRejection.ALREADY_CHECKED_IN,
            facts={
                "ticket_id": str(row["id"]),
                "checked_in_at": row["checked_in_at"],
                "checked_in_by": row["checked_in_by"],
                "gate": row["checked_in_gate"],
            },
        )
    if row["status"] != "valid":
        raise TicketRejected(
            TicketRejection.NOT_VALID,
            f"this ticket was {row['status']}",
            facts={"ticket_id": str(row["id"]), "status": row["status"]},
        )


def _identify(
    public: Ed25519PublicKey, event_id: str, scans: Sequence[Scan]
) -> list[tuple[str | None, bool]]:
    """Per scan: the ticket id (None if malformed) and whether it verifies for the event."""
    out: list[tuple[str | None, bool]] = []
    for scan in scans:
        try:
            ticket, _ = qr.parse(scan.qr)
        except InvalidTicket:
            out.append((None, False))
            continue
        try:
            qr.verify(public, scan.qr, event_id)
            out.append((ticket, True))
        except InvalidTicket:
            out.append((ticket, False))
    return out


_KNOWN = "SELECT id FROM tickets WHERE id = ANY($1::uuid[])"
_LOCK = """
SELECT id, event_id, status::text AS status, checked_in_at, checked_in_by, checked_in_gate
FROM tickets WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE
"""
_RECORD = """
UPDATE tickets AS t SET status = 'used', checked_in_at = v.at, checked_in_by = v.by,
                        checked_in_gate = v.gate
FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[]) AS v(id, at, by, gate)
WHERE t.id = v.id
"""


class _Ticket:
    """A ticket's state while a sync is applied to it."""

    __slots__ = ("at", "by", "changed", "event_id", "gate", "status")

    def __init__(self, row: asyncpg.Record) -> None:
        self.event_id = str(row["event_id"])
        self.status: str = row["status"]
        self.at: datetime | None = row["checked_in_at"]
        self.by: str | None = row["checked_in_by"]
        self.gate: str | None = row["checked_in_gate"]
        self.changed = False


def _apply(ticket: _Ticket, at: datetime, by: str | None, gate: str | None) -> Outcome:
    """One scan, in scan-time order: the earliest scan of a ticket is its check-in."""
    if ticket.status in ("refunded", "cancelled"):
        return Outcome.NOT_VALID
    if ticket.at is not None and ticket.at <= at:
        return Outcome.ALREADY_CHECKED_IN
    # Unused, or used later than this scan happened: this scan was the true first.
    ticket.status, ticket.at, ticket.by, ticket.gate = "used", at, by, gate
    ticket.changed = True
    return Outcome.CHECKED_IN


def _outcome(
    public: Ed25519PublicKey,
    event_id: str,
    scan: Scan,
    at: datetime,
    identity: tuple[str | None, bool],
    tickets: dict[str, _Ticket],
) -> Outcome:
    ticket_id, genuine = identity
    if ticket_id is None:
        return Outcome.INVALID_TICKET
    ticket = tickets.get(ticket_id)
    if ticket is None:
        return Outcome.NOT_FOUND if genuine else Outcome.INVALID_TICKET
    if ticket.event_id != event_id:
        elsewhere = genuine or _genuine_elsewhere(public, scan.qr, event_id, ticket.event_id)
        return Outcome.WRONG_EVENT if elsewhere else Outcome.INVALID_TICKET
    if not genuine:
        return Outcome.INVALID_TICKET
    return _apply(ticket, at, scan.scanner, scan.gate)


async def sync(
    pool: asyncpg.Pool,
    public: Ed25519PublicKey,
    event_id: str,
    scans: Sequence[Scan],
    now: datetime,
    *,
    redis: RedisClient = None,
) -> list[ScanResult]:
    """Apply offline scans in one transaction; one result per scan, in the request's order.

    With ``redis``, genuine tickets Postgres does not know yet are committed from the
    orders the committer has not written first (as :func:`check_in` does)."""
    # Up to a thousand signature checks: off the event loop, which serves other requests.
    identified = await asyncio.to_thread(_identify, public, event_id, scans)
    ids = sorted({t for t, _ in identified if t is not None})
    if redis is not None:
        genuine = sorted({t for t, ok in identified if t is not None and ok})
        known = {str(r[0]) for r in await pool.fetch(_KNOWN, genuine)} if genuine else set()
        if missing := [t for t in genuine if t not in known]:
            await uncommitted.commit_recent(pool, redis, event_id, missing)
    outcomes: list[Outcome] = [Outcome.INVALID_TICKET] * len(scans)
    async with pool.acquire() as conn, conn.transaction():
        # Locked in id order (no deadlock between syncs); online scans of these tickets
        # wait for this transaction, so neither overwrites the other's decision.
        tickets = {str(r["id"]): _Ticket(r) for r in await conn.fetch(_LOCK, ids)}
        # A scanner's clock may run ahead; a scan cannot have happened after its upload.
        times = [min(scan.scanned_at, now).astimezone(UTC) for scan in scans]
        for i in sorted(range(len(scans)), key=lambda i: (times[i], i)):
            outcomes[i] = _outcome(public, event_id, scans[i], times[i], identified[i], tickets)
        changed = [(tid, t) for tid, t in tickets.items() if t.changed]
        if changed:
            await conn.execute(
                _RECORD,
                [tid for tid, _ in changed],
                [t.at for _, t in changed],
                [t.by for _, t in changed],
                [t.gate for _, t in changed],
            )
    results = []
    for scan, (ticket_id, _), outcome in zip(scans, identified, outcomes, strict=True):
        result = ScanResult(scan.qr, ticket_id, outcome)
        if outcome in (Outcome.CHECKED_IN, Outcome.ALREADY_CHECKED_IN) and ticket_id:
            final = tickets[ticket_id]
            result.checked_in_at, result.checked_in_by = final.at, final.by
            result.gate = final.gate
        results.append(result)
    return results


_MANIFEST = """
SELECT id::text AS ticket_id, tier_id::text AS tier_id, attendee_name,
       status::text AS status, checked_in_at, checked_in_gate
FROM tickets WHERE event_id = $1
"""
_encode = msgspec.json.Encoder().encode


async def open_manifest(
    pool: asyncpg.Pool, event_id: str, keys: list[dict[str, str]], generated_at: datetime
) -> AsyncIterator[bytes]:
    """The :func:`manifest` of an event known to exist, else ``event_not_found``: checked
    now, because a stream's answer is under way before its first chunk is read."""
    if not await pool.fetchval("SELECT 1 FROM events WHERE id = $1", event_id):
        raise EventRejected(EventRejection.NOT_FOUND)
    return manifest(pool, event_id, keys, generated_at)


async def manifest(
    pool: asyncpg.Pool, event_id: str, keys: list[dict[str, str]], generated_at: datetime
) -> AsyncIterator[bytes]:
    """The offline scanner's download, as JSON chunks: one query, read through a cursor so
    that a stadium's worth of tickets never sits in memory at once."""
    yield (
        b'{"event_id":' + _encode(event_id)
        + b',"generated_at":' + _encode(generated_at)
        + b',"keys":' + _encode(keys)
        + b',"tickets":['
    )  # fmt: skip
    first = True
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        cursor = await conn.cursor(_MANIFEST, event_id)
        while rows := await cursor.fetch(MANIFEST_CHUNK):
            chunk = _encode([ManifestTicket(**dict(r)) for r in rows])[1:-1]
            yield chunk if first else b"," + chunk
            first = False
    yield b"]}"
