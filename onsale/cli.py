"""The ``onsale`` command: dev | serve | committer | mailer | migrate | reconcile | preflight |
recover | user | bench | loadtest."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from onsale import config
from onsale.checkout.writer import COPY, METHODS
from onsale.db.url import redact


def _migrate(args: argparse.Namespace) -> int:
    from onsale.db import migrate

    settings = config.load()
    settings.require("ONSALE_DATABASE_URL")
    applied = asyncio.run(migrate.apply(settings.database.url))
    target = redact(settings.database.url)
    print(f"applied {len(applied)} migration(s) to {target}: {', '.join(applied) or 'up to date'}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from onsale.gateway.server import serve

    settings = config.load()
    required = ["ONSALE_REDIS_URL", "ONSALE_DATABASE_URL", "ONSALE_ADMIN_TOKEN",
                "ONSALE_SIGNING_KEY"]  # fmt: skip
    if settings.stripe.secret_key:
        # Without it every webhook is refused: buyers would pay and nothing be confirmed.
        required.append("ONSALE_STRIPE_WEBHOOK_SECRET")
    settings.require(*required)
    if not settings.mail.smtp_url:
        print("onsale serve: ONSALE_SMTP_URL is not set: e-mail waits in the outbox until "
              "`onsale mailer` runs with it", file=sys.stderr)  # fmt: skip
    serve(
        host=args.host,
        port=args.port,
        workers=args.workers,
        trusted_proxies=settings.security.trusted_proxies,
    )
    return 0


def _committer(args: argparse.Namespace) -> int:
    from onsale.checkout.committer import CommitterOptions, main

    settings = config.load()
    settings.require("ONSALE_REDIS_URL", "ONSALE_DATABASE_URL")
    options = CommitterOptions(
        batch=args.batch,
        claim_idle_ms=int(args.claim_idle * 1000),
        max_attempts=args.max_attempts,
        method=args.method,
        events=tuple(args.event),
    )
    return main(settings, options)


def _mailer(args: argparse.Namespace) -> int:
    from onsale.mail.mailer import MailerOptions, main

    settings = config.load()
    settings.require("ONSALE_DATABASE_URL", "ONSALE_SIGNING_KEY", "ONSALE_SMTP_URL")
    options = MailerOptions(batch=args.batch, lease_s=args.lease, poll_s=args.poll)
    return main(settings, options)


def _reconcile(args: argparse.Namespace) -> int:
    import asyncpg
    import stripe
    from redis.exceptions import RedisError

    from onsale.checkout import reconcile
    from onsale.checkout.stripe_calls import StripeCalls

    settings = config.load()
    settings.require("ONSALE_REDIS_URL", "ONSALE_DATABASE_URL", "ONSALE_STRIPE_SECRET_KEY")
    try:
        since = reconcile.parse_window(args.since) if args.since else None
    except ValueError as exc:
        print(f"onsale: reconcile: --since: {exc}", file=sys.stderr)
        return 2
    if not args.rate > 0:
        print("onsale: reconcile: --rate must be above 0", file=sys.stderr)
        return 2
    calls = StripeCalls(rate=args.rate)
    try:
        return asyncio.run(reconcile.run(settings, args.event, since_s=since, calls=calls))
    except stripe.StripeError as exc:  # a key Stripe refuses: nothing can be checked
        print(f"onsale: reconcile: Stripe failed: {exc.user_message or exc}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError, RedisError) as exc:
        print(f"onsale: reconcile: cannot run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _preflight(args: argparse.Namespace) -> int:
    from onsale.preflight import runner

    settings = config.load()
    options = runner.Options(
        event=args.event,
        expect_visitors=args.expect_visitors,
        gateways=args.gateways,
        workers=args.workers,
    )
    try:
        clock = runner.host_clock()
    except ValueError:
        print(f"onsale: preflight: {runner.SKEW_ENV} is not a number", file=sys.stderr)
        return 2
    report = asyncio.run(runner.run(settings, options, clock=clock))
    print(report.text(), flush=True)
    return 1 if report.failed else 0


def _recover(args: argparse.Namespace) -> int:
    import stripe

    from onsale.checkout import recover

    settings = config.load()
    settings.require("ONSALE_REDIS_URL", "ONSALE_DATABASE_URL", "ONSALE_STRIPE_SECRET_KEY",
                     "ONSALE_SIGNING_KEY")  # fmt: skip
    try:
        return asyncio.run(
            recover.run(settings, args.event, refund_unresolved=args.refund_unresolved)
        )
    except stripe.StripeError as exc:
        print(f"onsale: recover: Stripe failed: {exc.user_message or exc}", file=sys.stderr)
        return 2


def _dev(args: argparse.Namespace) -> int:
    from onsale.dev import run

    return int(run(port=args.port, host=args.host))


def _bench(args: argparse.Namespace) -> int:
    return int(asyncio.run(args.bench_module.main(args)))


def _loadtest(args: argparse.Namespace) -> int:
    from onsale.loadtest import runner as loadtest

    return loadtest.run(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="onsale", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, metavar="command")

    dev = sub.add_parser("dev", help="everything on one machine on embedded services")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.set_defaults(func=_dev)

    serve = sub.add_parser("serve", help="the HTTP gateway")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=_serve)

    com = sub.add_parser("committer", help="the write-behind worker (any number may run)")
    com.add_argument("--batch", type=int, default=500, help="entries per read and transaction")
    com.add_argument(
        "--claim-idle",
        type=float,
        default=30.0,
        help="seconds before another committer's unacknowledged entries are reclaimed",
    )
    com.add_argument(
        "--max-attempts", type=int, default=5, help="failures before an entry is dead-lettered"
    )
    com.add_argument("--method", choices=METHODS, default=COPY, help="how batches are sent")
    com.add_argument(
        "--event", action="append", default=[], help="only this event (repeatable; default all)"
    )
    com.set_defaults(func=_committer)

    mailer = sub.add_parser("mailer", help="sends the e-mail outbox over SMTP (any number may run)")
    mailer.add_argument("--batch", type=int, default=20, help="messages per claim")
    mailer.add_argument(
        "--lease",
        type=float,
        default=120.0,
        help="seconds a claimed message is this mailer's before another may send it",
    )
    mailer.add_argument("--poll", type=float, default=1.0, help="seconds between empty polls")
    mailer.set_defaults(func=_mailer)

    rec = sub.add_parser("reconcile", help="compare Redis, Postgres and Stripe")
    rec.add_argument(
        "--event",
        action="append",
        default=[],
        help="this event (repeatable; default all armed, and those retired in the last 7 days)",
    )
    rec.add_argument(
        "--since",
        help="only events with activity in this window (orders created or updated, or the "
        "on-sale opening), like 24h, 90m or 7d",
    )
    rec.add_argument("--rate", type=float, default=20.0, help="Stripe requests per second at most")
    rec.set_defaults(func=_reconcile)

    pre = sub.add_parser(
        "preflight", help="check a deployment before a launch (read-only, under 10 s)"
    )
    pre.add_argument("--event", help="also check this event (armed, tiers, schedule, ...)")
    pre.add_argument(
        "--expect-visitors", type=int, help="the crowd expected: Redis must have room for it"
    )
    pre.add_argument(
        "--gateways", type=int, default=2, help="gateway processes planned (pods x workers)"
    )
    pre.add_argument(
        "--workers", type=int, default=3, help="committer and mailer processes planned"
    )
    pre.set_defaults(func=_preflight)

    rcv = sub.add_parser("recover", help="rebuild events' Redis state from Postgres and Stripe")
    rcv.add_argument(
        "--event",
        action="append",
        default=[],
        help="this event (repeatable; default every event whose sale is not over and whose "
        "state is missing)",
    )
    rcv.add_argument(
        "--refund-unresolved",
        action="store_true",
        help="refund paid orders whose tiers cannot be told, instead of refusing the event",
    )
    rcv.set_defaults(func=_recover)

    from onsale.loadtest import runner as loadtest

    load = sub.add_parser(
        "loadtest", help="a Locust scenario against a deployment, then the invariants"
    )
    loadtest.add_arguments(load)
    load.set_defaults(func=_loadtest)

    from onsale.accounts import cli as accounts_cli

    user = sub.add_parser("user", help="console accounts: add a user, list them")
    accounts_cli.add_arguments(user)

    mig = sub.add_parser("migrate", help="apply database migrations (idempotent)")
    mig.set_defaults(func=_migrate)

    bench = sub.add_parser("bench", help="benchmarks that print ratios against a baseline")
    bench_sub = bench.add_subparsers(dest="bench", required=True, metavar="benchmark")
    from onsale.bench import commit, inventory, mail, queue, report, reports

    for module, help_ in (
        (commit, "committer: COPY against executemany, and its lag under a steady load"),
        (inventory, "Redis Lua holds against Postgres locking"),
        (queue, "queue joins and status polls over HTTP against a bare endpoint"),
        (mail, "the mailer's messages/s to a local catcher, and PDF ms per ticket"),
        (report, "all of the above and a profile: regenerates docs/performance.md"),
        (reports, "event and platform report latency, attendee export rows/s and memory"),
    ):
        sub_parser = bench_sub.add_parser(module.__name__.rsplit(".", 1)[1], help=help_)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(func=_bench, bench_module=module)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except config.ConfigError as exc:
        print(f"onsale: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
