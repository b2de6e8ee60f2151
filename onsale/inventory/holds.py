"""Hold ids, and the one order a hold can become.

A hold id is ``<event_id>.<random>``: whoever holds one finds the event's Redis slot without
a lookup. The order of a hold is named after it, so that duplicate checkouts converge.
"""

from __future__ import annotations

import secrets
import uuid

_ORDER_NS = uuid.UUID("0b7e9a1c-44a5-4d2b-8f0e-7c1d2e3f4a5b")


def new_hold_id(event_id: str) -> str:
    # 128 random bits in hex, as uuid4().hex gave, without building a UUID (a hot path)
    return f"{event_id}.{secrets.token_hex(16)}"


def hold_event(hold_id: str) -> str:
    """The event a hold id names, or ``""`` if it is not one this engine made."""
    event_id, _, rest = hold_id.partition(".")
    try:
        return str(uuid.UUID(event_id)) if rest else ""
    except ValueError:
        return ""


def order_id_for(hold_id: str) -> str:
    """One order per hold: the id is derived from it, so duplicates converge."""
    return str(uuid.uuid5(_ORDER_NS, hold_id))
