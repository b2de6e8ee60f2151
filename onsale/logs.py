"""Structured logs: one JSON object per line, with the request id of the request being served.

Configured here and only here (``configure`` for our own processes, ``dict_config`` for
uvicorn, which applies it again in each worker process).
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import logging.config
import re
import secrets
from datetime import UTC, datetime
from typing import Any

#: The id of the request this task is serving ("" outside requests).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

_VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: Anything that looks like a credential is masked before a line is written: a handler that
#: logs a header or an exception by mistake must not leak it.
_SECRETS = re.compile(
    r"(?i)(bearer\s+)[^\s\"',;]+"
    r"|\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9]+"
    r"|\bwhsec_[A-Za-z0-9_\-]+"
    r"|((?:authorization|stripe-signature|x-visitor-token|password|secret|token)"
    r"[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic)\s+)?)[^\s\"',;]+"
)

#: LogRecord attributes that are not extras (uvicorn's ``color_message`` repeats the message).
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}
)


def valid_request_id(value: str | None) -> str | None:
    """The caller's ``X-Request-ID`` if it is safe to echo and log, else None."""
    if value and _VALID_ID.fullmatch(value):
        return value
    return None


#: A random prefix per process and a counter: unique ids without a system call per request.
_ID_PREFIX = secrets.token_hex(4)
_ids = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ids) & 0xFFFFFFFF:08x}"  # 16 hex digits, as before


def redact(text: str) -> str:
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2) or "") + "[redacted]", text)


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id", ...extras}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            doc["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in doc and not key.startswith("_"):
                doc[key] = value if isinstance(value, int | float | bool) else redact(str(value))
        if record.exc_info:
            doc["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, ensure_ascii=False, default=str)


def dict_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document: JSON lines on stderr for every logger."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "onsale.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        # uvicorn's loggers would otherwise keep their own plain-text handlers.
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure(level: str = "INFO") -> None:
    logging.config.dictConfig(dict_config(level))
