"""Ticket QR images over HTTP: what they decode to, who may fetch them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale import signing
from onsale.config import Settings
from onsale.tickets import qr, render
from tests.integration.api_support import bearer
from tests.integration.ticket_support import issue
from tests.qr_support import decode_png

Client = AsyncTestClient[Litestar]
PAYLOAD = re.compile(r"^ticket:([0-9a-f-]{36}):v1:([A-Za-z0-9_-]{86})$")


async def test_png_decodes_to_a_payload_the_jwks_key_verifies(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    order = await issue(client, admin, pool, settings)
    ticket = order.tickets[1]
    r = await client.get(f"/api/tickets/{ticket['ticket_id']}/qr.png", headers=bearer(order.token))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"] == "private, max-age=86400"
    payload = decode_png(r.content)
    assert payload == ticket["qr"]

    # Verified as a scanner would: only the contract's format and the published key.
    match = PAYLOAD.match(payload)
    assert match and match[1] == ticket["ticket_id"]
    (jwk,) = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")
    public = Ed25519PublicKey.from_public_bytes(signing.b64url_decode(jwk["x"]))
    message = f"{ticket['ticket_id']}:{order.event_id}:v1".encode()
    public.verify(signing.b64url_decode(match[2]), message)  # raises if it does not verify


async def test_svg_is_an_svg_document(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    order = await issue(client, admin, pool, settings, count=1)
    ticket = order.tickets[0]
    r = await client.get(f"/api/tickets/{ticket['ticket_id']}/qr.svg", headers=bearer(order.token))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert r.headers["cache-control"] == "private, max-age=86400"
    root = ET.fromstring(r.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}path") is not None
    assert r.content == render.svg(ticket["qr"])


async def test_images_need_the_token_of_the_tickets_order(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool, settings: Settings
) -> None:
    mine = await issue(client, admin, pool, settings, count=1)
    theirs = await issue(client, admin, pool, settings, count=1)
    url = f"/api/tickets/{mine.tickets[0]['ticket_id']}/qr.png"

    async def status(path: str, headers: dict[str, str]) -> tuple[int, str]:
        r = await client.get(path, headers=headers)
        return r.status_code, r.json()["code"]

    assert await status(url, {}) == (401, "order_token_invalid")
    assert await status(url, bearer("nonsense")) == (401, "order_token_invalid")
    forged = mine.token[:-4] + ("AAAA" if not mine.token.endswith("AAAA") else "BBBB")
    assert await status(url, bearer(forged)) == (401, "order_token_invalid")
    # A genuine token of another order: this ticket is not theirs to see.
    assert await status(url, bearer(theirs.token)) == (404, "ticket_not_found")
    assert await status(url.replace("png", "svg"), bearer(theirs.token)) == (
        404,
        "ticket_not_found",
    )
    unknown = qr.ticket_id(mine.order_id, 7)
    assert await status(f"/api/tickets/{unknown}/qr.png", bearer(mine.token)) == (
        404,
        "ticket_not_found",
    )
    assert await status("/api/tickets/not-a-uuid/qr.png", bearer(mine.token)) == (
        404,
        "ticket_not_found",
    )
