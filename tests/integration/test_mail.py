"""The e-mail outbox: written in the order's transaction, drained by the mailer over SMTP
through an outage, the confirmation with its PDF tickets whose QR codes scan."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import asyncpg
import msgspec
import pytest

from onsale import signing
from onsale.checkout.committer import Committer, CommitterOptions
from onsale.checkout.writer import METHODS, WRITERS, batch_rows, create_temp_tables
from onsale.db import connect
from onsale.events.models import Event
from onsale.mail import outbox
from onsale.mail.catcher import MailCatcher, free_port
from onsale.mail.mailer import Mailer, SmtpTarget, parse_smtp_url
from onsale.mail.render import load_order
from tests.integration.commit_support import create_event, drained, forget, running, sell, until
from tests.integration.mail_support import (
    FAST,
    PUBLIC_URL,
    attachment,
    own_database,
    pdf_qr_payloads,
    pdf_text,
    renderer,
    tokens,
)
from tests.integration.process_support import clean_env, onsale


async def outbox_rows(pool: asyncpg.Pool) -> list[Any]:
    return list(await pool.fetch("SELECT * FROM outbox ORDER BY id"))


@pytest.mark.parametrize("method", METHODS)
async def test_the_outbox_row_is_written_in_the_orders_transaction(
    redis: Any, postgres_server_url: str, method: str
) -> None:
    async with own_database(postgres_server_url) as (url, pool):
        event = await create_event(pool, redis)
        try:
            orders = await sell(redis, event, 6)
            rows = batch_rows(orders)
            # A committer that dies before COMMIT: its connection goes, nothing is written.
            conn = await connect(url)
            await create_temp_tables(conn)
            transaction = conn.transaction()
            await transaction.start()
            await WRITERS[method](conn, rows)
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 6  # inside, seen
            conn.terminate()
            assert await pool.fetchval("SELECT count(*) FROM orders") == 0
            assert await outbox_rows(pool) == []
            # Committed, then replayed: one message per order.
            conn = await connect(url)
            try:
                await create_temp_tables(conn)
                for writer in METHODS:
                    await WRITERS[writer](conn, rows)
                    await WRITERS[writer](conn, batch_rows(orders[:2]))
            finally:
                await conn.close()
            found = await outbox_rows(pool)
            assert sorted(str(r["order_id"]) for r in found) == sorted(o.order_id for o in orders)
            by_order = {str(r["order_id"]): r for r in found}
            for order in orders:
                row = by_order[order.order_id]
                assert (row["kind"], row["recipient"], row["sent_at"]) == (
                    outbox.ORDER_CONFIRMED, order.email, None,
                )  # fmt: skip
                # The same Message-ID as enqueue() gives the same message.
                assert row["message_id"] == outbox.message_id(f"order_confirmed:{order.order_id}")
            # enqueue() with the same dedupe key adds nothing.
            async with pool.acquire() as c:
                await outbox.enqueue(
                    c, kind=outbox.ORDER_CONFIRMED, recipient="x@example.com",
                    order_id=orders[0].order_id, payload={},
                    dedupe=f"order_confirmed:{orders[0].order_id}",
                )  # fmt: skip
            assert len(await outbox_rows(pool)) == 6
        finally:
            await forget(redis, event.id)


async def test_the_committer_writes_one_message_per_confirmed_order(
    redis: Any, postgres_server_url: str
) -> None:
    async with own_database(postgres_server_url) as (url, pool):
        event = await create_event(pool, redis)
        try:
            orders = await sell(redis, event, 30)
            async with running(Committer(redis, url, CommitterOptions(events=(event.id,)))):
                await drained(redis, event.id)
            found = await outbox_rows(pool)
            assert sorted(str(r["order_id"]) for r in found) == sorted(o.order_id for o in orders)
        finally:
            await forget(redis, event.id)


async def committed_event(redis: Any, pool: asyncpg.Pool, url: str, n: int) -> Event:
    event = await create_event(pool, redis)
    await sell(redis, event, n)
    async with running(Committer(redis, url, CommitterOptions(events=(event.id,)))):
        await drained(redis, event.id)
    return event


async def test_an_smtp_outage_delays_mail_and_loses_none(
    redis: Any, postgres_server_url: str
) -> None:
    async with own_database(postgres_server_url) as (url, pool):
        event = await committed_event(redis, pool, url, 12)
        try:
            port = free_port()  # nothing listens there yet
            mailer = Mailer(pool, renderer(), SmtpTarget("127.0.0.1", port), FAST)
            stop = asyncio.Event()
            task = asyncio.create_task(mailer.run(stop))
            try:

                async def retried() -> bool:
                    rows = await outbox_rows(pool)
                    return all(r["attempts"] >= 2 for r in rows)

                await until(retried, "every message to be tried twice", timeout=30)
                rows = await outbox_rows(pool)
                assert len(rows) == 12
                assert all(r["sent_at"] is None and "connect" in r["last_error"] for r in rows)
                assert mailer.sent == 0
                with MailCatcher(port=port) as catcher:

                    async def all_sent() -> bool:
                        sent = await pool.fetchval(
                            "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL"
                        )
                        return bool(sent == 12)

                    await until(all_sent, "the mail to go once SMTP is back", timeout=60)
                    await asyncio.sleep(0.3)  # a second send would arrive meanwhile
                    caught = catcher.messages()
            finally:
                stop.set()
                await asyncio.wait_for(task, 30)
            ids = sorted(m.message()["Message-ID"] for m in caught)
            assert ids == sorted(r["message_id"] for r in rows)  # each once
            assert all(r["last_error"] is None for r in await outbox_rows(pool))
        finally:
            await forget(redis, event.id)


async def test_mailers_side_by_side_send_each_message_once(
    redis: Any, postgres_server_url: str
) -> None:
    async with own_database(postgres_server_url) as (url, pool):
        event = await committed_event(redis, pool, url, 40)
        try:
            with MailCatcher() as catcher:
                target = parse_smtp_url(catcher.smtp_url)
                stop = asyncio.Event()
                mailers = [Mailer(pool, renderer(), target, FAST) for _ in range(3)]
                tasks = [asyncio.create_task(m.run(stop)) for m in mailers]
                try:

                    async def done() -> bool:
                        n = await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                        return bool(n == 0)

                    await until(done, "the outbox to drain", timeout=120)
                finally:
                    stop.set()
                    await asyncio.gather(*tasks)
                caught = catcher.messages()
            assert len(caught) == 40 == sum(m.sent for m in mailers)
            assert len({m.message()["Message-ID"] for m in caught}) == 40
        finally:
            await forget(redis, event.id)


async def test_the_confirmation_has_the_order_a_link_and_pdf_tickets_that_scan(
    redis: Any, postgres_server_url: str
) -> None:
    async with own_database(postgres_server_url) as (url, pool):
        event = await committed_event(redis, pool, url, 3)
        order_tokens = tokens()
        try:
            with MailCatcher() as catcher:
                mailer = Mailer(
                    pool, renderer(order_tokens), parse_smtp_url(catcher.smtp_url), FAST
                )
                assert await mailer.run_once() == 3
                caught = catcher.messages()
            assert len(caught) == 3
            for mail in caught:
                message = mail.message()
                to = message["To"]
                row = await pool.fetchrow(
                    "SELECT * FROM outbox WHERE message_id = $1", message["Message-ID"]
                )
                assert row is not None and row["sent_at"] is not None and row["recipient"] == to
                order = await load_order(pool, str(row["order_id"]))
                assert order is not None
                assert event.title in message["Subject"]
                text = message.get_body(("plain",))
                html = message.get_body(("html",))
                assert text is not None and html is not None
                plain, rich = text.get_content(), html.get_content()
                link = re.search(rf"{re.escape(PUBLIC_URL)}/o/([0-9a-f-]+)\?t=(\S+)", plain)
                assert link is not None and link.group(1) == order.order_id
                assert order_tokens.verify(order.order_id, link.group(2)) == event.id
                assert link.group(0).replace("&", "&amp;") in rich
                for part in (plain, rich):
                    assert event.title in part and order.order_id in part
                    assert f"{order.amount / 100:,.2f} USD" in part
                    for line in order.lines:
                        assert line.tier_name in part
                name, pdf = attachment(message)
                assert name == f"tickets-{order.order_id}.pdf"
                payloads = sorted(t.payload for t in order.tickets)
                assert len(payloads) >= 1
                assert pdf_qr_payloads(pdf) == [t.payload for t in order.tickets]
                for page, ticket in zip(pdf_text(pdf), order.tickets, strict=True):
                    assert event.title in page and order.order_id in page
                    assert ticket.tier_name in page and order.name in page
        finally:
            await forget(redis, event.id)


async def test_refund_and_links_messages_render(redis: Any, postgres_server_url: str) -> None:
    async with own_database(postgres_server_url) as (url, pool):
        event = await committed_event(redis, pool, url, 1)
        try:
            order_id = str(await pool.fetchval("SELECT id FROM orders"))
            async with pool.acquire() as conn, conn.transaction():
                await pool.execute("DELETE FROM outbox")
                await outbox.enqueue(
                    conn, kind=outbox.ORDER_REFUNDED, recipient="buyer@example.com",
                    order_id=order_id, payload={"amount": 1234}, dedupe=f"refund:{order_id}",
                )  # fmt: skip
                await outbox.enqueue(
                    conn, kind=outbox.ORDER_LINKS, recipient="buyer@example.com", order_id=None,
                    payload={"orders": [{"order_id": order_id, "event_title": event.title,
                                         "link": f"{PUBLIC_URL}/o/{order_id}?t=x"}]},
                    dedupe=f"links:{uuid.uuid4()}",
                )  # fmt: skip
            with MailCatcher() as catcher:
                mailer = Mailer(pool, renderer(), parse_smtp_url(catcher.smtp_url), FAST)
                assert await mailer.run_once() == 2
                caught = {m.message()["Subject"]: m.message() for m in catcher.messages()}
            refund = caught[f"Refunded: {event.title}"]
            body = refund.get_body(("plain",))
            assert body is not None and "12.34 USD" in body.get_content()
            assert not list(refund.iter_attachments())
            links = caught["Your orders"]
            body = links.get_body(("plain",))
            assert body is not None and f"/o/{order_id}?t=x" in body.get_content()
        finally:
            await forget(redis, event.id)


async def test_a_dead_mailers_claim_lapses_and_another_sends_its_mail(
    redis: Any, postgres_server_url: str
) -> None:
    async with own_database(postgres_server_url) as (url, pool):
        event = await committed_event(redis, pool, url, 4)
        try:
            with MailCatcher() as catcher:
                target = parse_smtp_url(catcher.smtp_url)
                dead = Mailer(pool, renderer(), target, msgspec.structs.replace(FAST, lease_s=1.0))
                assert len(await dead.claim()) == 4  # ... and it dies before sending
                other = Mailer(pool, renderer(), target, FAST)
                assert await other.run_once() == 0  # leased: not another's yet
                # Once the lease (1 s) lapses, the other mailer claims and sends all four.
                deadline = time.monotonic() + 10
                while (sent := await other.run_once()) == 0:
                    assert time.monotonic() < deadline, "the dead mailer's claim never lapsed"
                    await asyncio.sleep(0.05)
                assert sent == 4
                assert len(catcher.messages()) == 4
            assert all(r["attempts"] == 2 and r["sent_at"] for r in await outbox_rows(pool))
        finally:
            await forget(redis, event.id)


async def test_onsale_mailer_runs_until_sigterm(redis: Any, postgres_server_url: str) -> None:
    missing = onsale("mailer", env=clean_env())
    assert missing.returncode == 2
    assert missing.stderr == (
        "onsale: missing required environment variable(s): ONSALE_DATABASE_URL, "
        "ONSALE_SIGNING_KEY, ONSALE_SMTP_URL\n"
    )
    async with own_database(postgres_server_url) as (url, pool):
        event = await committed_event(redis, pool, url, 5)
        try:
            with MailCatcher() as catcher:
                env = clean_env(
                    ONSALE_DATABASE_URL=url, ONSALE_SMTP_URL=catcher.smtp_url,
                    ONSALE_SIGNING_KEY=signing.generate_pem(), ONSALE_MAIL_FROM="box@example.com",
                )  # fmt: skip
                process = subprocess.Popen(
                    [sys.executable, "-m", "onsale", "mailer", "--poll", "0.05"],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                )  # fmt: skip
                try:

                    async def sent() -> bool:
                        return len(catcher.messages()) == 5

                    await until(sent, "onsale mailer to send the outbox", timeout=60)
                finally:
                    process.send_signal(signal.SIGTERM)
                    _, log = process.communicate(timeout=30)
                assert process.returncode == 0, log
                assert "mailer stopped: 5 sent" in log
                assert {m.message()["From"] for m in catcher.messages()} == {"box@example.com"}
        finally:
            await forget(redis, event.id)


async def test_a_confirmation_refunded_before_it_went_out_is_not_sent(
    redis: Any, postgres_server_url: str
) -> None:
    async with own_database(postgres_server_url) as (url, pool):
        event = await committed_event(redis, pool, url, 2)
        try:
            refunded = await pool.fetchval("SELECT id FROM orders ORDER BY id LIMIT 1")
            await pool.execute("UPDATE orders SET status = 'refunded' WHERE id = $1", refunded)
            with MailCatcher() as catcher:
                mailer = Mailer(pool, renderer(), parse_smtp_url(catcher.smtp_url), FAST)
                assert await mailer.run_once() == 2
                caught = catcher.messages()
            assert len(caught) == 1 and mailer.sent == 1
            rows = {r["order_id"]: r for r in await outbox_rows(pool)}
            assert rows[refunded]["sent_at"] is not None
            assert rows[refunded]["last_error"] == "not sent: the order is refunded"
            assert caught[0].message()["Message-ID"] != rows[refunded]["message_id"]
        finally:
            await forget(redis, event.id)
