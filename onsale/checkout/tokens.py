"""Order tokens: ``o1.<event_id>.<order_id>.<mac>``, the buyer's key to their order.

HMAC with a secret derived from the signing key; the token names the event, so an order
is found on its event's Redis slot without an index.
"""

from __future__ import annotations

import hmac
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from onsale import signing
from onsale.checkout.errors import CheckoutRejected, CheckoutRejection


class OrderTokens:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._secret = signing.derive(key, b"onsale order token v1")

    def issue(self, event_id: str, order_id: str) -> str:
        return f"o1.{event_id}.{order_id}.{signing.mac(self._secret, f'{event_id}:{order_id}')}"

    def verify(self, order_id: str, token: str) -> str:
        """The event id of a valid token for ``order_id``, else ``order_token_invalid``."""
        parts = token.split(".")
        if len(parts) == 4 and parts[0] == "o1" and parts[2] == order_id:
            expected = signing.mac(self._secret, f"{parts[1]}:{order_id}")
            if hmac.compare_digest(parts[3].encode(), expected.encode()):
                try:
                    return str(uuid.UUID(parts[1]))
                except ValueError:
                    pass
        raise CheckoutRejected(CheckoutRejection.ORDER_TOKEN_INVALID)

    def open(self, token: str) -> tuple[str, str]:
        """(event_id, order_id) of a valid token, whichever order it names (it is verified
        before anything is looked up, so a forged token learns nothing)."""
        parts = token.split(".")
        order_id = parts[2] if len(parts) == 4 else ""
        return self.verify(order_id, token), order_id
