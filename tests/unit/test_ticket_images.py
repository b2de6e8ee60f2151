"""Ticket QR images: rendered once per payload, and every one reads back."""

from __future__ import annotations

import uuid

from onsale import signing
from onsale.tickets import qr, render
from tests.qr_support import decode_png


def test_rendering_is_pure_and_cached() -> None:
    key = signing.load(signing.generate_pem())
    payload = qr.sign(key, str(uuid.uuid4()), str(uuid.uuid4()))
    assert render.png(payload) is render.png(payload)
    assert render.svg(payload) is render.svg(payload)
    for _ in range(20):  # random payloads: every one must read back
        payload = qr.sign(key, str(uuid.uuid4()), str(uuid.uuid4()))
        assert decode_png(render.png(payload)) == payload
    assert render.png.cache_info().maxsize == render.CACHE_SIZE
