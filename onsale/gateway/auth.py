"""The guards routes name by what they protect; the rules are in onsale/accounts/guard.py."""

from __future__ import annotations

from onsale.accounts.guard import (
    account_guard,
    admin_only_guard,
    bearer,
    caller_of,
    checkin_guard,
    event_guard,
    organizer_guard,
)

__all__ = [
    "account_guard",
    "admin_only_guard",
    "bearer",
    "caller_of",
    "checkin_guard",
    "event_guard",
    "organizer_guard",
]
