"""PDF tickets: one A4 page per ticket, with the QR code of the ticket's payload.

The QR matrix comes from ``qrcode`` (the same encoder as the ticket images) and is drawn
as vector rectangles with ReportLab, so it scans at any zoom and decodes to exactly the
payload.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime

import msgspec
import qrcode
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas


class PdfTicket(msgspec.Struct, frozen=True):
    """What one page shows."""

    event_title: str
    starts_at: datetime | None
    venue: str
    tier_name: str
    attendee: str
    payload: str
    order_id: str
    ticket_id: str = ""


def qr_matrix(payload: str) -> list[list[bool]]:
    """The QR code of ``payload`` as rows of dark modules, with its quiet zone."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(payload)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    return matrix


def _draw_qr(canvas: Canvas, payload: str, x: float, y: float, size: float) -> None:
    """The QR code, ``size`` wide, its bottom-left corner at (x, y): each run of dark
    modules in a row is one rectangle."""
    matrix = qr_matrix(payload)
    module = size / len(matrix)
    canvas.setFillColorRGB(1, 1, 1)
    canvas.rect(x, y, size, size, stroke=0, fill=1)
    canvas.setFillColorRGB(0, 0, 0)
    for r, row in enumerate(matrix):
        top = y + size - (r + 1) * module
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                canvas.rect(x + start * module, top, (c - start) * module, module, stroke=0, fill=1)
            else:
                c += 1


def when(starts_at: datetime | None) -> str:
    return starts_at.strftime("%A %d %B %Y, %H:%M %Z").strip() if starts_at else ""


def render(tickets: Sequence[PdfTicket], *, title: str = "Tickets") -> bytes:
    """The PDF: a page per ticket, in the order given."""
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, invariant=True)
    canvas.setTitle(title)
    canvas.setAuthor("onsale")
    width, height = A4
    for ticket in tickets:
        left = 20 * mm
        y = height - 30 * mm
        canvas.setFont("Helvetica-Bold", 22)
        canvas.drawString(left, y, ticket.event_title[:60])
        canvas.setFont("Helvetica", 12)
        for line in (when(ticket.starts_at), ticket.venue):
            if line:
                y -= 8 * mm
                canvas.drawString(left, y, line[:90])
        y -= 14 * mm
        canvas.setFont("Helvetica-Bold", 16)
        canvas.drawString(left, y, ticket.tier_name[:60])
        y -= 8 * mm
        canvas.setFont("Helvetica", 13)
        if ticket.attendee:
            canvas.drawString(left, y, ticket.attendee[:70])
        size = 110 * mm
        qr_y = y - 10 * mm - size
        _draw_qr(canvas, ticket.payload, (width - size) / 2, qr_y, size)
        canvas.setFont("Helvetica", 9)
        canvas.drawCentredString(width / 2, qr_y - 6 * mm, "Show this code at the entrance.")
        canvas.drawString(left, 20 * mm, f"Order {ticket.order_id}")
        if ticket.ticket_id:
            canvas.drawString(left, 15 * mm, f"Ticket {ticket.ticket_id}")
        canvas.showPage()
    canvas.save()
    return out.getvalue()
