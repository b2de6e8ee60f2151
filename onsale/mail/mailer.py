"""``onsale mailer``: drains the outbox over SMTP. Any number may run.

A round claims a small batch of due rows with ``FOR UPDATE SKIP LOCKED`` and leases them
(``next_attempt_at`` moves past the lease, ``attempts`` grows) in one short transaction,
then renders and sends them over one SMTP connection, and marks each sent or, on failure,
due again after an exponential backoff. Mail is never lost while SMTP is down: it waits.
A mailer that dies mid-batch leaves its rows to be claimed again when the lease lapses;
a message it had sent is then sent twice, with the same Message-ID, so a mail client or
the recipient recognises it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import asyncpg
import msgspec
import uvloop

from onsale import logs, signing
from onsale.checkout.tokens import OrderTokens
from onsale.config import ConfigError, Settings
from onsale.mail.render import Obsolete, Renderer

log = logging.getLogger("onsale.mailer")

SMTP_ERRORS: tuple[type[BaseException], ...] = (aiosmtplib.SMTPException, OSError, TimeoutError)
DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


class SmtpTarget(msgspec.Struct, frozen=True):
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    #: Implicit TLS (``smtps://``).
    tls: bool = False
    #: STARTTLS after connecting (``?starttls=1``).
    starttls: bool = False


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://[user:pass@]host:port[?starttls=1]`` or ``smtps://...``."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError("invalid setting: ONSALE_SMTP_URL: expected smtp://host:port or smtps://")
    tls = parts.scheme == "smtps"
    query = parse_qs(parts.query)
    starttls = query.get("starttls", ["0"])[-1].lower() in ("1", "true", "yes")
    return SmtpTarget(
        host=parts.hostname,
        port=parts.port or (465 if tls else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
        starttls=starttls and not tls,
    )


class MailerOptions(msgspec.Struct, frozen=True):
    #: Rows per claim (one SMTP connection per batch).
    batch: int = 20
    #: How long a claimed row is the claimer's before another mailer may take it.
    lease_s: float = 120.0
    #: Backoff after the first failure; it doubles each time, up to ``max_backoff_s``.
    backoff_s: float = 5.0
    max_backoff_s: float = 3600.0
    #: Sleep between empty polls.
    poll_s: float = 1.0
    #: SMTP connect and command timeout.
    smtp_timeout_s: float = 15.0


_CLAIM = """
UPDATE outbox SET attempts = attempts + 1,
                  next_attempt_at = now() + make_interval(secs => $2)
WHERE id IN (
    SELECT id FROM outbox
    WHERE sent_at IS NULL AND next_attempt_at <= now()
    ORDER BY next_attempt_at, id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
RETURNING id, kind, recipient, order_id, payload, message_id, attempts
"""
_SENT = "UPDATE outbox SET sent_at = now(), last_error = NULL WHERE id = $1"
# Done with, though not sent: last_error says why.
_DROPPED = "UPDATE outbox SET sent_at = now(), last_error = $2 WHERE id = $1"
_FAILED = """
UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3
WHERE id = $1 AND sent_at IS NULL
"""


def backoff(attempts: int, options: MailerOptions) -> float:
    """Seconds before the next try after ``attempts`` tries."""
    return float(min(options.backoff_s * 2 ** max(attempts - 1, 0), options.max_backoff_s))


class Mailer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        renderer: Renderer,
        smtp: SmtpTarget,
        options: MailerOptions | None = None,
    ) -> None:
        self.pool = pool
        self.renderer = renderer
        self.smtp = smtp
        self.options = options or MailerOptions()
        self.sent = 0
        self.failed = 0
        self._smtp_down_since: float | None = None

    def _client(self) -> aiosmtplib.SMTP:
        s = self.smtp
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            use_tls=s.tls,
            start_tls=s.starttls if s.starttls else False,
            timeout=self.options.smtp_timeout_s,
            tls_context=ssl.create_default_context() if (s.tls or s.starttls) else None,
        )

    async def claim(self) -> list[Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            return list(await conn.fetch(_CLAIM, self.options.batch, self.options.lease_s))

    async def _fail(self, row: Any, error: str) -> None:
        self.failed += 1
        delay = backoff(row["attempts"], self.options)
        await self.pool.execute(_FAILED, row["id"], delay, error[:500])

    async def run_once(self) -> int:
        """One round: claim, send, mark. Returns the rows claimed."""
        rows = await self.claim()
        if not rows:
            return 0
        messages: list[tuple[Any, EmailMessage]] = []
        for row in rows:
            try:
                messages.append((row, await self.renderer.message(self.pool, row)))
            except Obsolete as exc:
                log.info("outbox %s (%s): not sent: %s", row["id"], row["kind"], exc)
                await self.pool.execute(_DROPPED, row["id"], f"not sent: {exc}")
            except Exception as exc:  # a message that cannot be rendered waits, loudly
                log.exception("outbox %s (%s): cannot render", row["id"], row["kind"])
                await self._fail(row, f"render: {type(exc).__name__}: {exc}")
        if messages:
            await self._send(messages)
        return len(rows)

    async def _connect(self, messages: list[tuple[Any, EmailMessage]]) -> aiosmtplib.SMTP | None:
        client = self._client()
        try:
            await client.connect()
        except SMTP_ERRORS as exc:
            if self._smtp_down_since is None:
                self._smtp_down_since = time.monotonic()
                log.error("SMTP %s:%s unavailable (%s); mail waits in the outbox",
                          self.smtp.host, self.smtp.port, exc)  # fmt: skip
            for row, _ in messages:
                await self._fail(row, f"smtp connect: {type(exc).__name__}: {exc}")
            return None
        if self._smtp_down_since is not None:
            log.warning("SMTP is back after %.1f s", time.monotonic() - self._smtp_down_since)
            self._smtp_down_since = None
        return client

    async def _send(self, messages: list[tuple[Any, EmailMessage]]) -> None:
        client = await self._connect(messages)
        if client is None:
            return
        try:
            for row, msg in messages:
                try:
                    await client.send_message(msg)
                except SMTP_ERRORS as exc:
                    log.warning("outbox %s: send failed: %s", row["id"], exc)
                    await self._fail(row, f"smtp: {type(exc).__name__}: {exc}")
                    if not client.is_connected:
                        await client.connect()
                    continue
                await self.pool.execute(_SENT, row["id"])
                self.sent += 1
        except SMTP_ERRORS as exc:
            # Rows still leased are retried when the lease lapses; nothing is lost.
            log.warning("SMTP connection lost: %s; the rest of the batch retries later", exc)
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except SMTP_ERRORS:
                    client.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: rounds back to back while there is work, polls otherwise."""
        while not stop.is_set():
            try:
                claimed = await self.run_once()
            except DB_ERRORS as exc:
                log.error("outbox unavailable (%s); retrying", exc)
                claimed = 0
            if claimed < self.options.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.options.poll_s)


def renderer_for(settings: Settings) -> Renderer:
    tokens = OrderTokens(signing.load(settings.security.signing_key))
    return Renderer(tokens, settings.mail.public_url, settings.mail.mail_from)


def main(settings: Settings, options: MailerOptions) -> int:
    """``onsale mailer``: until SIGINT or SIGTERM."""
    if not logging.getLogger().handlers:
        logs.configure()
    smtp = parse_smtp_url(settings.mail.smtp_url)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        pool = await asyncpg.create_pool(settings.database.url, min_size=1, max_size=4)
        try:
            log.info("mailer: sending to %s:%s", smtp.host, smtp.port)
            mailer = Mailer(pool, renderer_for(settings), smtp, options)
            await mailer.run(stop)
            log.info("mailer stopped: %d sent, %d failures", mailer.sent, mailer.failed)
        finally:
            await pool.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())
    return 0
