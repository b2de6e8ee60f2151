"""Why a report or an export is refused."""

from __future__ import annotations

from enum import StrEnum

from onsale.domain import DomainError


class ReportRejection(StrEnum):
    #: ``from``/``to`` not ISO 8601 times, or ``from`` not before ``to``.
    INVALID_RANGE = "invalid_range"


class ReportRejected(DomainError):
    reason: ReportRejection
