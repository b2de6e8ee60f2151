"""What every domain refusal shares; HTTP is decided at the edge, never here.

Each domain package raises its own subclass, with a reason from its own enum (inventory's
:class:`~onsale.inventory.HoldRejected`, queue's ``TokenRejected``, checkout's
``CheckoutRejected``, tickets' ``TicketRejected``, events' ``EventRejected``). The gateway
maps them, by one table (``onsale/gateway/errors.py``), to the wire codes of
``onsale/errors.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class DomainError(Exception):
    """A refusal: ``reason`` says why, ``detail`` says it to a person (``None``: the code's
    own words), and ``facts`` are what a client may act on (a tier, a time)."""

    reason: StrEnum

    def __init__(
        self, reason: StrEnum, detail: str | None = None, *, facts: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail
        self.facts: dict[str, Any] = dict(facts or {})
