"""What the door scanner's browser tests share: tickets signed by the server's key written
straight into its Postgres, and a fake camera's video (Y4M) made from their QR images."""

from __future__ import annotations

import asyncio
import io
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from onsale.tickets import qr, render

#: The fake camera's frame size and rate.
WIDTH, HEIGHT, FPS = 640, 480, 10


async def _insert(
    database_url: str, rows: list[tuple[str, str, str, str, str, str, str]], order_id: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        event_id = rows[0][2]
        await conn.execute(
            "INSERT INTO orders (id, event_id, email, name, amount, currency, status,"
            " confirmed_at) VALUES ($1, $2, 'door@example.com', 'Door', 0, 'USD', 'confirmed',"
            " now())",
            order_id,
            event_id,
        )
        await conn.executemany(
            "INSERT INTO tickets (id, order_id, event_id, tier_id, qr_secret, attendee_name,"
            " attendee_email, status) VALUES ($1, $2, $3, $4, $5, $6, 'door@example.com', $7)",
            rows,
        )
    finally:
        await conn.close()


def issue(
    database_url: str,
    key: Ed25519PrivateKey,
    event_id: str,
    tier_id: str,
    people: list[tuple[str, str]],
) -> list[str]:
    """Tickets of one confirmed order, for ``(attendee name, status)`` each: their QR
    payloads, signed as the committer signs them."""
    order_id = str(uuid.uuid4())
    rows, payloads = [], []
    for i, (name, status) in enumerate(people):
        tid = qr.ticket_id(order_id, i)
        payload = qr.sign(key, tid, event_id)
        payloads.append(payload)
        rows.append((tid, order_id, event_id, tier_id, payload, name, status))
    # Playwright's sync API holds this thread's event loop: write from a thread of its own.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, _insert(database_url, rows, order_id)).result()
    return payloads


def _frame(payload: str | None) -> bytes:
    """One I420 frame: the ticket's real QR image (as the buyer gets it) on white."""
    canvas = Image.new("L", (WIDTH, HEIGHT), 255)
    if payload is not None:
        code = Image.open(io.BytesIO(render.png(payload))).convert("L")
        side = HEIGHT - 80
        code = code.resize((side, side), Image.Resampling.NEAREST)
        canvas.paste(code, ((WIDTH - side) // 2, (HEIGHT - side) // 2))
    chroma = bytes([128]) * (WIDTH // 2 * HEIGHT // 2)
    return b"FRAME\n" + canvas.tobytes() + chroma + chroma


def video(path: Path, scenes: list[tuple[str | None, float]]) -> Path:
    """A Y4M video of ``(payload or None for an empty view, seconds)`` scenes; Chromium's
    fake camera plays it in a loop."""
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for payload, seconds in scenes:
            frame = _frame(payload)
            out.write(frame * max(1, round(seconds * FPS)))
    return path


def forged(payload: str) -> str:
    """The same ticket id with a signature that is not the server's (a made-up ticket)."""
    prefix, _, _ = payload.rpartition(":")
    other = qr.sign(Ed25519PrivateKey.generate(), payload.split(":")[1], str(uuid.uuid4()))
    return f"{prefix}:{other.rpartition(':')[2]}"


def p50(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
