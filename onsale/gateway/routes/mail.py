"""The PDF tickets of an order, and (``onsale dev`` only) the caught mail at ``/dev/mail``."""

from __future__ import annotations

import asyncio
import html
from email.message import EmailMessage
from pathlib import Path

from litestar import MediaType, Response, get
from litestar.params import FromPath

from onsale.errors import ApiError, Code
from onsale.gateway.auth import bearer
from onsale.gateway.types import AnyRequest, Deps
from onsale.mail.catcher import stored, stored_one
from onsale.mail.render import event_info, pdf_tickets
from onsale.tickets import pdf


@get("/api/orders/{order_id:str}/tickets.pdf")
async def tickets_pdf(
    order_id: FromPath[str], request: AnyRequest, services: Deps
) -> Response[bytes]:
    """The order's tickets, a page each, as in the confirmation e-mail (order token)."""
    event_id = services.order_tokens.verify(order_id, bearer(request))
    order = await services.orders.find(event_id, order_id)
    if order.status != "confirmed":  # refunded: void tickets; pending or failed: none yet
        raise ApiError(Code.TICKET_NOT_VALID, f"the order is {order.status}", status=409)
    info = await event_info(services.pool, event_id)
    if info is None:
        raise ApiError(Code.EVENT_NOT_FOUND)
    pages = pdf_tickets(
        info, order_id, order.name, [(t.ticket_id, t.tier_id, t.qr) for t in order.tickets]
    )
    document = await asyncio.to_thread(pdf.render, pages, title=f"{info.title}: tickets")
    return Response(
        document,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="tickets-{order_id}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )


def _mail_dir(services: Deps) -> Path:
    """Where ``onsale dev``'s mail catcher keeps mail; 404 unless emulated (dev, tests)."""
    if not services.settings.stripe.emulated:
        raise ApiError(Code.NOT_FOUND)
    return services.settings.data_path / "mail"


_STYLE = (
    "<style>body{font-family:sans-serif;margin:1.5em;max-width:60em}"
    "td,th{padding:.3em .6em;text-align:left;border-bottom:1px solid #ddd}"
    "iframe{width:100%;height:28em;border:1px solid #ccc}pre{white-space:pre-wrap;"
    "background:#f6f6f6;padding:1em}</style>"
)


def _page(title: str, body: str) -> Response[str]:
    doc = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title>{_STYLE}</head><body>{body}</body></html>"
    )
    return Response(doc, media_type=MediaType.HTML, headers={"Cache-Control": "no-store"})


def _attachments(message: EmailMessage) -> list[EmailMessage]:
    return [p for p in message.iter_attachments() if isinstance(p, EmailMessage)]


@get("/dev/mail")
async def dev_mail(services: Deps) -> Response[str]:
    """The mail ``onsale dev`` caught, newest first."""
    rows = []
    for name, message in await asyncio.to_thread(stored, _mail_dir(services)):
        files = ", ".join(html.escape(a.get_filename() or "?") for a in _attachments(message))
        rows.append(
            f"<tr><td>{html.escape(str(message['Date'] or ''))}</td>"
            f"<td>{html.escape(str(message['To'] or ''))}</td>"
            f'<td><a href="/dev/mail/{html.escape(name)}">'
            f"{html.escape(str(message['Subject'] or '(no subject)'))}</a></td>"
            f"<td>{files}</td></tr>"
        )
    table = (
        "<table><tr><th>Date</th><th>To</th><th>Subject</th><th>Attachments</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else "<p>No mail yet.</p>"
    )
    return _page("Caught mail", f"<h1>Caught mail</h1>{table}")


def _one(services: Deps, name: str) -> EmailMessage:
    message = stored_one(_mail_dir(services), name)
    if message is None:
        raise ApiError(Code.NOT_FOUND)
    return message


@get("/dev/mail/{name:str}")
async def dev_mail_message(name: FromPath[str], services: Deps) -> Response[str]:
    message = _one(services, name)
    head = "".join(
        f"<tr><th>{h}</th><td>{html.escape(str(message[h] or ''))}</td></tr>"
        for h in ("From", "To", "Subject", "Date", "Message-ID")
    )
    parts = []
    rich = message.get_body(("html",))
    if rich is not None:
        parts.append(f'<h2>HTML</h2><iframe sandbox="" srcdoc="{html.escape(rich.get_content())}">'
                     "</iframe>")  # fmt: skip
    plain = message.get_body(("plain",))
    if plain is not None:
        parts.append(f"<h2>Text</h2><pre>{html.escape(plain.get_content())}</pre>")
    links = "".join(
        f'<li><a href="/dev/mail/{html.escape(name)}/attachments/{i}">'
        f"{html.escape(a.get_filename() or f'attachment {i}')}</a> "
        f"({html.escape(a.get_content_type())})</li>"
        for i, a in enumerate(_attachments(message))
    )
    if links:
        parts.append(f"<h2>Attachments</h2><ul>{links}</ul>")
    body = f'<p><a href="/dev/mail">&larr; all mail</a></p><table>{head}</table>{"".join(parts)}'
    return _page(str(message["Subject"] or "Mail"), body)


@get("/dev/mail/{name:str}/attachments/{index:int}")
async def dev_mail_attachment(
    name: FromPath[str], index: FromPath[int], services: Deps
) -> Response[bytes]:
    files = _attachments(_one(services, name))
    if not 0 <= index < len(files):
        raise ApiError(Code.NOT_FOUND)
    part = files[index]
    content = part.get_content()
    data = content if isinstance(content, bytes) else str(content).encode()
    filename = (part.get_filename() or f"attachment-{index}").replace('"', "")
    return Response(
        data,
        media_type=part.get_content_type(),
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


ROUTES = [tickets_pdf, dev_mail, dev_mail_message, dev_mail_attachment]
