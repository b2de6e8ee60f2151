"""GET /api/orders/{id}/tickets.pdf with the order token, /dev/mail (emulated only), and the
outbox in /metrics."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from onsale.checkout.committer import Committer, CommitterOptions
from onsale.config import Settings
from onsale.gateway import metrics
from onsale.gateway.app import create_app
from onsale.gateway.services import Services
from onsale.mail.catcher import MailCatcher
from onsale.mail.mailer import Mailer, parse_smtp_url
from tests.integration.commit_support import create_event, drained, forget, running, sell
from tests.integration.mail_support import (
    FAST,
    own_database,
    pdf_qr_payloads,
    pdf_text,
    renderer,
)


async def test_tickets_pdf_needs_the_order_token_and_its_codes_scan(
    client: AsyncTestClient[Litestar], app_services: Services, pool: asyncpg.Pool, redis: Any,
    database_url: str,
) -> None:  # fmt: skip
    event = await create_event(pool, redis)
    try:
        order, other = await sell(redis, event, 2)
        async with running(Committer(redis, database_url, CommitterOptions(events=(event.id,)))):
            await drained(redis, event.id)
        token = app_services.order_tokens.issue(event.id, order.order_id)
        url = f"/api/orders/{order.order_id}/tickets.pdf"
        answer = await client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/pdf"
        assert "no-store" in answer.headers["cache-control"]
        assert pdf_qr_payloads(answer.content) == [t.qr for t in order.tickets]
        tiers = {t.id: t.name for t in event.tiers}
        for page, ticket in zip(pdf_text(answer.content), order.tickets, strict=True):
            assert event.title in page and order.order_id in page and order.name in page
            assert tiers[ticket.tier_id] in page
        # No token, a forged one, another order's: refused, and nothing about the order.
        other_token = app_services.order_tokens.issue(event.id, other.order_id)
        for headers in ({}, {"Authorization": f"Bearer {token}x"},
                        {"Authorization": f"Bearer {other_token}"}):  # fmt: skip
            refused = await client.get(url, headers=headers)
            assert refused.status_code in (401, 403), (headers, refused.status_code)
            assert refused.headers["content-type"].startswith("application/json")
        # A refunded order's tickets are void: no PDF of them.
        await pool.execute(
            "UPDATE orders SET status = 'refunded' WHERE id = $1", uuid.UUID(other.order_id)
        )
        void = await client.get(
            f"/api/orders/{other.order_id}/tickets.pdf",
            headers={"Authorization": f"Bearer {other_token}"},
        )
        assert void.status_code == 409 and void.json()["code"] == "ticket_not_valid"
    finally:
        await forget(redis, event.id)


async def test_dev_mail_shows_caught_mail_with_its_attachment(
    settings: Settings, client: AsyncTestClient[Litestar], redis: Any, postgres_server_url: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    # Not in the session's gateway without a catcher's directory: nothing to show, and
    # against real Stripe the route does not exist.
    real = msgspec.structs.replace(
        settings, stripe=msgspec.structs.replace(settings.stripe, api_base="")
    )
    async with AsyncTestClient(app=create_app(real)) as prod:
        assert (await prod.get("/dev/mail")).status_code == 404
    async with own_database(postgres_server_url) as (url, own_pool):
        event = await create_event(own_pool, redis)
        try:
            await sell(redis, event, 1)
            async with running(Committer(redis, url, CommitterOptions(events=(event.id,)))):
                await drained(redis, event.id)
            dev = msgspec.structs.replace(settings, data_dir=str(tmp_path))
            with MailCatcher(directory=tmp_path / "mail") as catcher:
                mailer = Mailer(own_pool, renderer(), parse_smtp_url(catcher.smtp_url), FAST)
                assert await mailer.run_once() == 1
            async with AsyncTestClient(app=create_app(dev)) as c:
                listing = await c.get("/dev/mail")
                assert listing.status_code == 200 and event.title in listing.text
                assert "tickets-" in listing.text and "buyer@example.com" in listing.text
                name = next(p.stem for p in (tmp_path / "mail").glob("*.eml"))
                page = await c.get(f"/dev/mail/{name}")
                assert page.status_code == 200 and "srcdoc" in page.text
                pdf = await c.get(f"/dev/mail/{name}/attachments/0")
                assert pdf.status_code == 200
                assert pdf.headers["content-type"] == "application/pdf"
                assert pdf.content.startswith(b"%PDF")
                for bad in ("..%2Fx", "nope"):
                    assert (await c.get(f"/dev/mail/{bad}")).status_code == 404
                assert (await c.get(f"/dev/mail/{name}/attachments/5")).status_code == 404
        finally:
            await forget(redis, event.id)


async def test_metrics_show_the_outbox_and_skip_it_when_postgres_hangs(
    client: AsyncTestClient[Litestar], pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    unsent = await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    text = (await client.get("/metrics")).text
    line = re.search(r"^onsale_mail_outbox_pending (\S+)$", text, re.M)
    assert line is not None and float(line.group(1)) >= unsent
    assert re.search(r"^onsale_mail_outbox_oldest_seconds \S+$", text, re.M)

    async def hangs(conn: Any) -> tuple[int, float]:
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    monkeypatch.setattr(metrics.outbox, "backlog", hangs)
    started = time.monotonic()
    answer = await client.get("/metrics")
    assert answer.status_code == 200 and time.monotonic() - started < 5
    assert "onsale_mail_outbox_pending" not in answer.text
    assert "onsale_redis_up 1.0" in answer.text
