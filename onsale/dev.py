"""``onsale dev``: the whole system on one machine, on embedded services.

Embedded Redis and Postgres under the data dir (unless ``ONSALE_REDIS_URL`` /
``ONSALE_DATABASE_URL`` name running ones), the Stripe emulator, migrations, a demo event,
the gateway, a committer, and a mailer sending to a local mail catcher (``/dev/mail``)
unless ``ONSALE_SMTP_URL`` names a server.
Ctrl-C stops all of it; the data stays in the data dir for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import uvicorn
import uvloop

from onsale import config, logs, signing
from onsale.accounts import staff, users
from onsale.accounts.models import Role
from onsale.checkout.committer import Committer
from onsale.config import Settings, StripeSettings
from onsale.db import create_pool, migrate
from onsale.db.url import redact
from onsale.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedStripe
from onsale.events import catalog
from onsale.events.models import EventIn
from onsale.gateway.app import create_app
from onsale.gateway.services import redis_client
from onsale.inventory import Inventory
from onsale.mail.catcher import MailCatcher
from onsale.mail.mailer import Mailer, parse_smtp_url, renderer_for
from onsale.promo import codes as promo_codes
from onsale.queue import access as access_codes

DEMO_EVENT = {
    "title": "Night Owls - Live (demo)",
    "description": "A demo on-sale created by `onsale dev`.",
    "venue": {"name": "Arena", "city": "Oslo", "country": "NO"},
    "currency": "USD",
    "tiers": [
        {"name": "General Admission", "price": 4500, "capacity": 500, "per_order_limit": 6},
        {"name": "VIP", "price": 15000, "capacity": 50, "per_order_limit": 2},
    ],
    # The bot tax on (docs/bot-tax.md): the buyer's page solves a proof-of-work of about a
    # second before joining, as a real launch should have it.
    "onsale": {
        "admit_per_minute": 120,
        "max_active": 100,
        "hold_seconds": 600,
        "pow_difficulty": 100_000,
    },
}
#: Seconds between the gateway listening and the preflight: the committer's first read
#: of the streams (every half second) makes it a live consumer of the demo event's.
PREFLIGHT_AFTER_S = 1.5
#: The demo organizer, owner of the demo event; its password is made once, in the data dir.
DEMO_ORGANIZER = "organizer@onsale.dev"


def _secret_file(path: Path, make: str) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(make)
    return path.read_text().strip()


async def _prepare(settings: Settings, organizer_password: str) -> str:
    """Migrate, make sure of the demo organizer, and create the demo event once (owned by
    the organizer); returns its id."""
    await migrate.apply(settings.database.url)
    marker = settings.data_path / "demo_event"
    pool = await create_pool(settings.database.url)
    redis = redis_client(settings)
    inventory = Inventory(redis)
    try:
        organizer = await users.ensure(pool, DEMO_ORGANIZER, Role.ORGANIZER, organizer_password)
        if marker.exists():
            event = await catalog.get(pool, marker.read_text().strip())
            await staff.adopt(pool, event.id, organizer.id)  # made before there were owners
            seed = await catalog.seed_of(pool, event.id)
            await catalog.arm(redis, inventory, event, seed)  # Redis may be fresh: arm again
            await promo_codes.arm(pool, redis, event.id)
            await access_codes.restore(pool, redis, event.id)
            return event.id
        now = datetime.now(UTC).replace(microsecond=0)
        doc = dict(DEMO_EVENT, starts_at=(now + timedelta(days=30)).isoformat())
        doc["onsale"] = dict(DEMO_EVENT["onsale"], opens_at=now.isoformat())  # type: ignore[arg-type]
        event = await catalog.create(pool, redis, inventory, msgspec.convert(doc, EventIn))
        await staff.set_owner(pool, event.id, organizer.id)
        marker.write_text(event.id)
        return event.id
    finally:
        await pool.close()
        await redis.aclose()


async def _preflight(settings: Settings, server: uvicorn.Server, event_id: str) -> None:
    """``onsale preflight --event <demo>`` against this stack once the gateway listens (its
    /.well-known/jwks.json is one of the checks) and the committer has read the streams;
    the summary goes to stderr. Never stops ``onsale dev``: a failure to run is one line."""
    from onsale.preflight import runner

    try:
        async with asyncio.timeout(30):
            while not server.started:
                await asyncio.sleep(0.05)
        await asyncio.sleep(PREFLIGHT_AFTER_S)
        report = await runner.run(settings, runner.Options(event=event_id, gateways=1, workers=2))
    except Exception as exc:  # a dev convenience: report it, keep serving
        print(f"onsale dev: preflight could not run: {type(exc).__name__}: {exc}",
              file=sys.stderr)  # fmt: skip
        return
    print(f"\n{report.text()}\n", file=sys.stderr, flush=True)


async def _serve(settings: Settings, host: str, port: int, event_id: str = "") -> None:
    """The gateway, a committer and a mailer in one process, until Ctrl-C."""
    config = uvicorn.Config(
        create_app(settings), host=host, port=port, http="httptools", access_log=False,
        log_level="warning", log_config=None,  # JSON lines, as configured by logs.configure
    )  # fmt: skip
    redis = redis_client(settings)
    stop = asyncio.Event()
    committer = asyncio.create_task(Committer(redis, settings.database.url).run(stop))
    mail_pool = await create_pool(settings.database.url, min_size=1, max_size=2)
    mailer = Mailer(mail_pool, renderer_for(settings), parse_smtp_url(settings.mail.smtp_url))
    mailing = asyncio.create_task(mailer.run(stop))
    server = uvicorn.Server(config)
    checking = asyncio.create_task(_preflight(settings, server, event_id)) if event_id else None
    try:
        await server.serve()
    finally:
        if checking is not None:
            checking.cancel()
        stop.set()  # the committer finishes the batch in hand, the mailer its round
        await committer
        await mailing
        await mail_pool.close()
        await redis.aclose()


def run(*, host: str, port: int) -> int:
    logs.configure()
    base = config.load()
    data = base.data_path
    data.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        redis_url = base.redis.url
        if not redis_url:
            print(f"starting embedded Redis in {data / 'redis'} ...", file=sys.stderr)
            redis_url = stack.enter_context(EmbeddedRedis(data))
        database_url = base.database.url
        if not database_url:
            print(f"starting embedded Postgres in {data / 'postgres'} ...", file=sys.stderr)
            database_url = stack.enter_context(EmbeddedPostgres(data))
        admin = base.security.admin_token or _secret_file(
            data / "admin_token", secrets.token_urlsafe(24)
        )
        key = base.security.signing_key or signing.load_or_create(data / "signing_key.pem")
        organizer_password = _secret_file(
            data / "demo_organizer_password", secrets.token_urlsafe(12)
        )
        stripe_settings = base.stripe
        stripe_note = "Stripe (from ONSALE_STRIPE_*)"
        if not stripe_settings.secret_key:
            print("starting the Stripe emulator (localstripe) ...", file=sys.stderr)
            emulator = EmbeddedStripe(data)
            stack.enter_context(emulator)
            stripe_settings = StripeSettings(
                secret_key=EmbeddedStripe.SECRET_KEY,
                publishable_key=EmbeddedStripe.PUBLISHABLE_KEY,
                webhook_secret=_secret_file(
                    data / "stripe_webhook_secret", "whsec_" + secrets.token_urlsafe(24)
                ),
                api_base=emulator.url,
            )
            emulator.register_webhook(
                f"http://127.0.0.1:{port}/api/webhooks/stripe", stripe_settings.webhook_secret
            )
            stripe_note = f"Stripe emulator at {emulator.url} (test card 4242 4242 4242 4242)"
        settings = msgspec.structs.replace(
            base,
            redis=msgspec.structs.replace(base.redis, url=redis_url),
            database=msgspec.structs.replace(base.database, url=database_url),
            # Plain http://127.0.0.1: a Secure session cookie would never come back.
            security=msgspec.structs.replace(
                base.security, admin_token=admin, signing_key=key, secure_cookies=False
            ),
            stripe=stripe_settings,
        )
        if not os.environ.get("ONSALE_PUBLIC_URL", "").strip():  # links to this server
            settings = msgspec.structs.replace(
                settings,
                mail=msgspec.structs.replace(settings.mail, public_url=f"http://{host}:{port}"),
            )
        mail_note = f"SMTP at {redact(settings.mail.smtp_url)}" if settings.mail.smtp_url else ""
        if not settings.mail.smtp_url:
            catcher = MailCatcher(directory=data / "mail")
            stack.enter_context(catcher)
            settings = msgspec.structs.replace(
                settings, mail=msgspec.structs.replace(settings.mail, smtp_url=catcher.smtp_url)
            )
            mail_note = f"caught at {catcher.smtp_url}, shown at http://{host}:{port}/dev/mail"
        event_id = asyncio.run(_prepare(settings, organizer_password))
        url = f"http://{host}:{port}"
        print(
            f"\nonsale dev is up (data in {data})\n"
            f"  demo event:   {url}/api/events/{event_id}\n"
            f"  live stats:   {url}/api/events/{event_id}/stats  (organizer token)\n"
            f"  admin token:  {admin}\n"
            f"  console:      {url}/organizer  (sign in as {DEMO_ORGANIZER}, password "
            f"{organizer_password})\n"
            f"  buyer page:   {url}/e/{event_id}\n"
            f"  readiness:    {url}/readyz\n"
            f"  payments:     {stripe_note}\n"
            f"  mail:         {mail_note}\n"
            f"  other commands against these services:\n"
            f"    export ONSALE_REDIS_URL='{redis_url}' ONSALE_DATABASE_URL='{database_url}'\n"
            f"Ctrl-C stops everything.\n",
            file=sys.stderr,
        )
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve(settings, host, port, event_id))
        print("stopping embedded services ...", file=sys.stderr)
    return 0
