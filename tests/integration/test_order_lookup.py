"""Find my tickets: ``POST /api/orders/lookup`` answers the same for every address, e-mails
the address links to its orders (an ``order_links`` outbox message), and is throttled."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from onsale import keys
from onsale.checkout.lookup import public_url
from onsale.gateway.routes.lookup import PER_ADDRESS, PER_CLIENT
from onsale.mail.render import Renderer
from tests.integration.api_support import Client, create, fresh_window

#: Headers that may differ between two answers for reasons that are not the address.
VOLATILE = {"date", "x-request-id"}


@pytest.fixture(autouse=True)
async def fresh_counts(redis: aioredis.Redis) -> None:
    """The in-process client is one address for the whole run: each test starts its count."""
    async for key in redis.scan_iter(match=keys.LOOKUP_LIMIT + ":rl:*"):
        await redis.delete(key)


def _answer(r: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in r.headers.items() if k.lower() not in VOLATILE}
    return r.status_code, r.content, headers


async def _bought(pool: asyncpg.Pool, event_id: str, email: str, status: str) -> str:
    """An order of ``email`` as the committer writes it to Postgres."""
    order_id = str(uuid.uuid4())
    await pool.execute(
        "INSERT INTO orders (id, event_id, email, name, amount, currency, status)"
        " VALUES ($1, $2, $3, 'Ada', 4500, 'USD', $4)",
        uuid.UUID(order_id),
        uuid.UUID(event_id),
        email,
        status,
    )
    return order_id


async def _messages(pool: asyncpg.Pool, recipient: str, wait_s: float = 0.0) -> list[Any]:
    deadline = time.monotonic() + wait_s
    while True:
        rows = await pool.fetch(
            "SELECT kind, recipient, order_id, payload FROM outbox WHERE recipient = $1",
            recipient,
        )
        if rows or time.monotonic() >= deadline:
            return rows
        await asyncio.sleep(0.05)


async def test_known_and_unknown_addresses_get_the_same_answer(
    client: Client, admin: dict[str, str], pool: asyncpg.Pool
) -> None:
    fresh_window()
    event = await create(client, admin)
    known = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    try:
        await _same_answer(client, pool, event, known, unknown)
    finally:
        # Made-up orders and their message out of the way of platform-wide figures and
        # of mailers run by other tests.
        await pool.execute("DELETE FROM outbox WHERE recipient = $1", known)
        await pool.execute("DELETE FROM orders WHERE lower(email) = $1", known)


async def _same_answer(
    client: Client, pool: asyncpg.Pool, event: dict[str, Any], known: str, unknown: str
) -> None:
    paid = await _bought(pool, event["id"], known, "confirmed")
    refunded = await _bought(pool, event["id"], known, "refunded")

    # The known address as typed by a person (case, spaces): matched all the same.
    r_known = await client.post("/api/orders/lookup", json={"email": f"  {known.upper()} "})
    r_unknown = await client.post("/api/orders/lookup", json={"email": unknown})
    assert r_known.status_code == 202, r_known.text
    assert _answer(r_known) == _answer(r_unknown)
    assert "retry-after" not in r_known.headers

    rows = await _messages(pool, known, wait_s=5)
    assert len(rows) == 1, rows
    assert rows[0]["kind"] == "order_links" and rows[0]["order_id"] is None
    payload = json.loads(rows[0]["payload"])
    links = {o["order_id"]: o for o in payload["orders"]}
    assert set(links) == {paid, refunded}
    base = public_url(client.app.state.services.settings)
    for order_id, link in links.items():
        assert link["event_title"] == event["title"]
        assert link["url"].startswith(f"{base}/o/{order_id}?t=o1.")
        assert link["link"] == link["url"]
        # The link's token opens the order (the same token the checkout gave).
        token = link["url"].split("?t=", 1)[1]
        services = client.app.state.services
        assert services.order_tokens.verify(order_id, token) == event["id"]
    assert await _messages(pool, unknown, wait_s=0.5) == []
    # The mailer makes of it a message with the links.
    renderer = Renderer(services.order_tokens, base, "tickets@localhost")
    message = await renderer.message(pool, {**rows[0], "message_id": "<x@onsale.invalid>"})
    text = message.get_body(("plain",))
    assert text is not None
    for link in links.values():
        assert link["url"] in text.get_content()

    # Asked again at once: still 202 and the same body, and no second message.
    again = await client.post("/api/orders/lookup", json={"email": known})
    assert _answer(again) == _answer(r_unknown)
    await asyncio.sleep(0.3)
    assert len(await _messages(pool, known)) == 1


async def test_an_address_that_is_not_one_is_refused(client: Client) -> None:
    for body in ({"email": "not-an-address"}, {"email": "a@b"}, {"email": ""}, {"mail": "x"}):
        r = await client.post("/api/orders/lookup", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_request"
    r = await client.post("/api/orders/lookup", content=b"{", headers={"content-type": "x"})
    assert r.status_code in (400, 422) and r.json()["code"] == "invalid_request"


async def test_one_address_is_throttled(client: Client) -> None:
    fresh_window()
    email = f"flood-{uuid.uuid4().hex[:8]}@example.com"
    for _ in range(PER_ADDRESS):
        assert (await client.post("/api/orders/lookup", json={"email": email})).status_code == 202
    r = await client.post("/api/orders/lookup", json={"email": email.upper()})
    assert r.status_code == 429, r.text
    assert r.json()["code"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # Another address from the same client is not held back by that one.
    other = f"other-{uuid.uuid4().hex[:8]}@example.com"
    assert (await client.post("/api/orders/lookup", json={"email": other})).status_code == 202


async def test_one_client_is_throttled(client: Client) -> None:
    fresh_window()
    answers = []
    for _ in range(PER_CLIENT + 1):
        email = f"scan-{uuid.uuid4().hex[:8]}@example.com"
        answers.append(await client.post("/api/orders/lookup", json={"email": email}))
    last = answers[-1]
    assert last.status_code == 429, last.text
    assert last.json()["code"] == "rate_limited" and "retry-after" in last.headers
    assert all(a.status_code in (202, 429) for a in answers)
