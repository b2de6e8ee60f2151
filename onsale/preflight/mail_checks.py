"""SMTP: the server ``ONSALE_SMTP_URL`` names greets us (``220``); we say QUIT, nothing is
sent."""

from __future__ import annotations

import asyncio
import ssl

from onsale.config import ConfigError
from onsale.db.url import redact
from onsale.mail.mailer import parse_smtp_url
from onsale.preflight.result import Check, fail, passed, warn


async def checks(smtp_url: str, timeout: float = 3.0) -> list[Check]:
    if not smtp_url:
        return [
            warn(
                "smtp",
                "ONSALE_SMTP_URL is not set: confirmations wait in the outbox",
                "set it and run `onsale mailer`",
            )
        ]
    try:
        target = parse_smtp_url(smtp_url)
    except ConfigError as exc:
        return [fail("smtp", str(exc), "fix ONSALE_SMTP_URL")]
    where = redact(smtp_url)
    try:
        async with asyncio.timeout(timeout):
            context = ssl.create_default_context() if target.tls else None
            reader, writer = await asyncio.open_connection(target.host, target.port, ssl=context)
            try:
                banner = (await reader.readline()).decode(errors="replace").strip()
                writer.write(b"QUIT\r\n")
                await writer.drain()
            finally:
                writer.close()
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return [
            fail(
                "smtp",
                f"{where}: {type(exc).__name__}: {exc}",
                "start the SMTP server or fix ONSALE_SMTP_URL",
            )
        ]
    if not banner.startswith("220"):
        return [
            fail(
                "smtp",
                f"{where} greets with {banner[:80]!r}, not 220",
                "point ONSALE_SMTP_URL at an SMTP server",
            )
        ]
    return [passed("smtp", f"{where} answers ({banner[:60]})")]
