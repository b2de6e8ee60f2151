"""The ticket QR payload: ``ticket:{ticket_id}:v1:{sig}``.

``sig`` is the unpadded base64url Ed25519 signature of ``{ticket_id}:{event_id}:v1`` by a
key published in the JWKS, so a scanner that knows its event verifies a ticket offline.
Ed25519 signatures are deterministic: the same ticket always gets the same payload.
"""

from __future__ import annotations

import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from onsale import signing

PREFIX = "ticket:"
VERSION = "v1"
#: Ticket ids are derived from the order, so that confirming twice makes the same tickets.
_NAMESPACE = uuid.UUID("6f1d3c52-5d0e-4d8e-9a57-2b8f4f1e9c11")


class InvalidTicket(ValueError):
    """Malformed payload or a signature that does not verify."""


def ticket_id(order_id: str, index: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{order_id}:{index}"))


def _message(ticket: str, event_id: str) -> bytes:
    return f"{ticket}:{event_id}:{VERSION}".encode()


def sign(key: Ed25519PrivateKey, ticket: str, event_id: str) -> str:
    return f"{PREFIX}{ticket}:{VERSION}:{signing.b64url(key.sign(_message(ticket, event_id)))}"


def parse(payload: str) -> tuple[str, bytes]:
    """(ticket_id, signature) of a well-formed payload, else :class:`InvalidTicket`."""
    parts = payload.split(":")
    if len(parts) != 4 or parts[0] + ":" != PREFIX or parts[2] != VERSION or len(payload) > 200:
        raise InvalidTicket("not an onsale ticket")
    try:
        ticket = str(uuid.UUID(parts[1]))
        signature = signing.b64url_decode(parts[3])
    except ValueError:
        raise InvalidTicket("not an onsale ticket") from None
    if len(signature) != 64:
        raise InvalidTicket("bad signature")
    return ticket, signature


def verify(public: Ed25519PublicKey, payload: str, event_id: str) -> str:
    """The ticket id if ``payload`` is a genuine ticket of ``event_id``."""
    ticket, signature = parse(payload)
    try:
        public.verify(signature, _message(ticket, event_id))
    except InvalidSignature:
        raise InvalidTicket("the signature does not verify for this event") from None
    return ticket
