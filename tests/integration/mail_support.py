"""What the mail tests share: a database of their own (the mailer drains every row of
the outbox, and the session's database has other tests' orders), a renderer, PDF pages
decoded."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage

import asyncpg
import pypdfium2

from onsale import signing
from onsale.checkout.tokens import OrderTokens
from onsale.db import connect, create_pool, migrate
from onsale.db.url import with_database
from onsale.mail.mailer import MailerOptions
from onsale.mail.render import Renderer
from tests.qr_support import decode_png

PUBLIC_URL = "http://tickets.example"
#: A mailer that retries at once: the tests wait for retries, not for backoffs.
FAST = MailerOptions(batch=5, backoff_s=0.05, max_backoff_s=0.2, poll_s=0.02, smtp_timeout_s=2)


@contextlib.asynccontextmanager
async def own_database(postgres_server_url: str) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A fresh migrated database and a pool on it, dropped on the way out."""
    name = f"onsale_mail_{uuid.uuid4().hex[:12]}"
    admin = await connect(postgres_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(postgres_server_url, name)
        await migrate.apply(url)
        pool = await create_pool(url, min_size=1, max_size=6)
        try:
            yield url, pool
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def tokens() -> OrderTokens:
    return OrderTokens(signing.load(signing.generate_pem()))


def renderer(order_tokens: OrderTokens | None = None) -> Renderer:
    return Renderer(order_tokens or tokens(), PUBLIC_URL, "tickets@example.com")


def pdf_qr_payloads(pdf: bytes) -> list[str]:
    """Each page rendered to an image and its QR code decoded, in page order."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        out = []
        for page in document:
            image = page.render(scale=2).to_pil()
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            out.append(decode_png(buffer.getvalue()))
        return out
    finally:
        document.close()


def pdf_text(pdf: bytes) -> list[str]:
    """Each page's text."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        return [page.get_textpage().get_text_range() for page in document]
    finally:
        document.close()


def attachment(message: EmailMessage) -> tuple[str, bytes]:
    """The one attached file: (name, content)."""
    parts = list(message.iter_attachments())
    assert len(parts) == 1, [p.get_filename() for p in parts]
    content = parts[0].get_content()
    assert isinstance(content, bytes)
    return parts[0].get_filename() or "", content
