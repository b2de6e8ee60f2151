"""A local SMTP server that keeps what it receives (``onsale dev``, the tests).

aiosmtpd's controller runs the server in a thread of its own; the caught messages are
read from any thread.
"""

from __future__ import annotations

import socket
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import msgspec
from aiosmtpd.controller import Controller


class Caught(msgspec.Struct, frozen=True):
    """One message as it arrived."""

    number: int
    received: float
    mail_from: str
    rcpt_to: list[str]
    data: bytes

    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.catcher.keep(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        return "250 Message accepted for delivery"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class MailCatcher:
    """``start()``, then mail to ``smtp_url``; ``messages()`` is what arrived, oldest first."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, keep: int = 500, directory: Path | None = None
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._keep = keep
        #: Also written there as ``<number>.eml`` (what ``/dev/mail`` shows), if set.
        self.directory = directory
        self._lock = threading.Lock()
        self._messages: list[Caught] = []
        self._count = 0
        self._controller: Controller | None = None

    @property
    def smtp_url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def keep(self, mail_from: str, rcpt_to: list[str], data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else bytes(data)
        with self._lock:
            self._count += 1
            self._messages.append(Caught(self._count, time.time(), mail_from, rcpt_to, raw))
            del self._messages[: -self._keep]
            if self.directory is not None:
                name = f"{time.time_ns()}-{self._count:06d}.eml"
                (self.directory / name).write_bytes(raw)

    @property
    def received(self) -> int:
        """Messages received since the start (more than :meth:`messages` keeps)."""
        with self._lock:
            return self._count

    def messages(self) -> list[Caught]:
        with self._lock:
            return list(self._messages)

    def get(self, number: int) -> Caught | None:
        with self._lock:
            return next((m for m in self._messages if m.number == number), None)

    def start(self) -> MailCatcher:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(
            _Handler(self), hostname=self.host, port=self.port, data_size_limit=50_000_000
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stored(directory: Path, limit: int = 200) -> list[tuple[str, EmailMessage]]:
    """Messages a catcher wrote to ``directory``: (name, message), newest first."""
    if not directory.is_dir():
        return []
    files = sorted(directory.glob("*.eml"), reverse=True)[:limit]
    out = []
    for path in files:
        parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
        if isinstance(parsed, EmailMessage):
            out.append((path.stem, parsed))
    return out


def stored_one(directory: Path, name: str) -> EmailMessage | None:
    """One stored message by name (no path tricks: the name must be a stored file's)."""
    path = directory / f"{name}.eml"
    if "/" in name or "\\" in name or name.startswith(".") or not path.is_file():
        return None
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    return parsed if isinstance(parsed, EmailMessage) else None
