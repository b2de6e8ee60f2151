"""``onsale bench mail``: the mailer's messages per second against a local mail catcher,
and the PDF tickets' render time per ticket.

On throwaway embedded servers only: the mailer drains every row of the outbox it is given,
so it is never pointed at a database whose mail is real. Orders of 1 to 4 tickets are
written by the committer's own writer (their confirmations land in the outbox in the same
transaction), then ``--mailers`` mailers send them all to an aiosmtpd catcher.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime

import msgspec

from onsale import signing
from onsale.bench.figures import progress
from onsale.bench.orders import bench_event, synthetic_order
from onsale.checkout.tokens import OrderTokens
from onsale.checkout.writer import batch_rows, create_temp_tables, write_copy
from onsale.connections import redis_client
from onsale.db import connect, create_pool, migrate
from onsale.mail.catcher import MailCatcher
from onsale.mail.mailer import Mailer, MailerOptions, parse_smtp_url
from onsale.mail.render import Renderer
from onsale.servers import stores
from onsale.tickets import pdf

PAYLOAD = "ticket:7603d756-a432-52eb-92a4-f33fd3ce1b54:v1:" + "U" * 86


class MailFigures(msgspec.Struct):
    messages: int
    tickets: int
    mailers: int
    seconds: float
    messages_per_s: float
    pdf_ms_per_ticket: float
    #: Of the mailer's time per message, the share spent drawing its PDF.
    pdf_share: float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=500, help="confirmations to send")
    parser.add_argument("--mailers", type=int, default=1, help="mailers side by side")
    parser.add_argument("--batch", type=int, default=20, help="messages per mailer claim")
    parser.add_argument("--pdf-tickets", type=int, default=100, help="tickets in the PDF timing")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


def pdf_ms_per_ticket(tickets: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of one ``tickets``-page PDF's render time, per ticket."""
    page = pdf.PdfTicket(
        "Night Owls - Live", datetime.now(UTC), "Arena, Oslo", "General Admission",
        "Ann Example", PAYLOAD, "60aa23e8-c373-599d-9c7d-66fe70901625",
    )  # fmt: skip
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        pdf.render([page] * tickets)
        times.append((time.perf_counter() - began) * 1000 / tickets)
    return statistics.median(times)


async def main(args: argparse.Namespace) -> int:
    out = sys.stderr if args.json else sys.stdout
    print("onsale bench mail: mailer messages/s to a local catcher, PDF ms per ticket", file=out)
    progress(f"PDF: {args.pdf_tickets} tickets, median of 5 ...")
    per_ticket = await asyncio.to_thread(pdf_ms_per_ticket, args.pdf_tickets)
    with stores(None, None) as (redis_url, database_url):
        await migrate.apply(database_url)
        pool = await create_pool(database_url, min_size=1, max_size=4 + 2 * args.mailers)
        redis = redis_client(redis_url)
        try:
            event = await bench_event(pool, redis, (4500, 15000), title="bench mail")
            rng = random.Random(1)
            orders = [synthetic_order(event, rng) for _ in range(args.messages)]
            for order in orders:  # payloads as long as real ones: the QR's size is the cost
                order.tickets = [
                    msgspec.structs.replace(t, qr=f"ticket:{t.ticket_id}:v1:{'U' * 86}")
                    for t in order.tickets
                ]
            tickets = sum(len(o.tickets) for o in orders)
            conn = await connect(database_url)
            try:
                await create_temp_tables(conn)
                for i in range(0, len(orders), 500):
                    await write_copy(conn, batch_rows(orders[i : i + 500]))
            finally:
                await conn.close()
            renderer = Renderer(
                OrderTokens(signing.load(signing.generate_pem())), "http://bench", "bench@local"
            )
            with MailCatcher(keep=10) as catcher:
                options = MailerOptions(batch=args.batch, poll_s=0.01)
                mailers = [
                    Mailer(pool, renderer, parse_smtp_url(catcher.smtp_url), options)
                    for _ in range(args.mailers)
                ]
                progress(f"sending {args.messages} confirmations ({tickets} tickets) with "
                         f"{args.mailers} mailer(s) ...")  # fmt: skip
                stop = asyncio.Event()
                began = time.perf_counter()
                tasks = [asyncio.create_task(m.run(stop)) for m in mailers]
                while sum(m.sent for m in mailers) < args.messages:
                    await asyncio.sleep(0.01)
                seconds = time.perf_counter() - began
                stop.set()
                await asyncio.gather(*tasks)
                caught = catcher.received
        finally:
            await pool.close()
            await redis.aclose()
    rate = args.messages / seconds
    ms_per_message = 1000 * args.mailers / rate
    figures = MailFigures(
        messages=args.messages,
        tickets=tickets,
        mailers=args.mailers,
        seconds=round(seconds, 3),
        messages_per_s=round(rate, 1),
        pdf_ms_per_ticket=round(per_ticket, 2),
        pdf_share=round(per_ticket * tickets / args.messages / ms_per_message, 3),
    )
    if caught != args.messages:
        progress(f"PROBLEM: {args.messages} sent, {caught} received")
    if args.json:
        sys.stdout.write(msgspec.json.encode(figures).decode() + "\n")
    else:
        print(
            f"\nmailer: {figures.messages_per_s:,.1f} messages/s ({args.messages} confirmations, "
            f"{tickets} PDF tickets, {args.mailers} mailer(s), batch {args.batch}, "
            f"{seconds:.2f} s; the catcher received {caught})\n"
            f"PDF:    {figures.pdf_ms_per_ticket:.2f} ms per ticket "
            f"({args.pdf_tickets}-page PDF, median of 5)\n"
            f"share of a mailer's time per message spent drawing its PDF: "
            f"{figures.pdf_share:.0%}"
        )
    return 0 if caught == args.messages else 1
