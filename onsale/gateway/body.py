"""Request bodies decoded by msgspec, with its precise message on failure."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from onsale.errors import ApiError, Code

T = TypeVar("T")

MAX_BODY = 64 * 1024


def decode(body: bytes, into: type[T], *, limit: int = MAX_BODY) -> T:
    if len(body) > limit:
        raise ApiError(Code.PAYLOAD_TOO_LARGE)
    try:
        return msgspec.json.decode(body, type=into)
    except msgspec.ValidationError as exc:
        raise ApiError(Code.INVALID_REQUEST, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ApiError(Code.INVALID_REQUEST, f"body is not valid JSON: {exc}", status=400) from None
