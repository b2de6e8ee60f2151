"""JSON log lines: shape, request id, extras, and no credentials."""

from __future__ import annotations

import json
import logging
import sys

from onsale import logs


def record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    r = logging.LogRecord("onsale.test", logging.WARNING, __file__, 1, msg, args, None)
    if exc:
        try:
            raise RuntimeError("boom with Bearer abc.def.ghi")
        except RuntimeError:
            r.exc_info = sys.exc_info()
    r.__dict__.update(extra)
    return r


def line(r: logging.LogRecord) -> dict[str, object]:
    text = logs.JsonFormatter().format(r)
    assert "\n" not in text
    doc: dict[str, object] = json.loads(text)
    return doc


def test_a_line_is_one_json_object_with_the_request_id() -> None:
    token = logs.request_id.set("req-42")
    try:
        doc = line(record("sold %d of %d", 3, 10, event_id="e1", batch=5))
    finally:
        logs.request_id.reset(token)
    assert doc["message"] == "sold 3 of 10"
    assert doc["level"] == "WARNING" and doc["logger"] == "onsale.test"
    assert doc["request_id"] == "req-42"
    assert doc["event_id"] == "e1" and doc["batch"] == 5
    assert str(doc["time"]).endswith("+00:00")
    assert "request_id" not in line(record("outside a request"))


def test_credentials_are_masked() -> None:
    secrets = [
        "s3cr3t-admin-token",
        "sk_live_abcDEF123",
        "whsec_abc123_x",
        "eyJhbGciOiJFZERTQSJ9.payload.sig",
    ]
    msg = (
        "headers: Authorization: Bearer s3cr3t-admin-token; key sk_live_abcDEF123 "
        "secret=whsec_abc123_x x-visitor-token: eyJhbGciOiJFZERTQSJ9.payload.sig"
    )
    doc = line(record(msg, exc=True, auth="Bearer s3cr3t-admin-token"))
    text = json.dumps(doc)
    for secret in [*secrets, "abc.def.ghi"]:
        assert secret not in text
    assert "[redacted]" in str(doc["message"])


def test_request_ids_are_validated() -> None:
    assert logs.valid_request_id("a-B_9.z") == "a-B_9.z"
    for bad in (None, "", "x" * 65, "a b", "a\nb", "ü", "a/b"):
        assert logs.valid_request_id(bad) is None
    assert logs.valid_request_id("x" * 64)
    assert logs.valid_request_id(logs.new_request_id())


def test_dict_config_sends_uvicorn_through_the_json_handler() -> None:
    cfg = logs.dict_config("debug")
    assert cfg["root"]["level"] == "DEBUG"
    assert cfg["formatters"]["json"]["()"] == "onsale.logs.JsonFormatter"
    assert cfg["loggers"]["uvicorn.error"] == {"handlers": [], "propagate": True}
