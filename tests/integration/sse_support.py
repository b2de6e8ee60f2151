"""Reading a Server-Sent Events stream from the in-process gateway, and hanging up.

The test client buffers a whole response, which a stream never ends; so the app is called
as an ASGI server would, on the test client's own loop (its portal), with a ``receive``
that says ``http.disconnect`` once the test has read enough.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient


class Listener:
    """One client of ``path``: its response's start, body chunks, and a way to hang up."""

    def __init__(self, client: AsyncTestClient[Litestar], path: str, headers: dict[str, str]):
        self.messages: list[dict[str, Any]] = []
        self._gone = threading.Event()
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }  # fmt: skip
        self._done = client.blocking_portal.start_task_soon(
            client.app, scope, self._receive, self._send
        )

    async def _receive(self) -> dict[str, Any]:
        if not hasattr(self, "_asked"):
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        while not self._gone.is_set():
            await asyncio.sleep(0.02)
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int | None:
        return next((m["status"] for m in self.messages if m["type"] == "http.response.start"),
                    None)  # fmt: skip

    @property
    def headers(self) -> dict[str, str]:
        start = next(m for m in self.messages if m["type"] == "http.response.start")
        return {k.decode(): v.decode() for k, v in start["headers"]}

    @property
    def text(self) -> str:
        return b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        ).decode()

    def frames(self) -> list[dict[str, str]]:
        """The complete events so far, each as its fields (``event``, ``data``, ...)."""
        out = []
        for block in self.text.split("\r\n\r\n")[:-1]:
            fields: dict[str, str] = {}
            for line in block.replace("\r\n", "\n").split("\n"):
                name, _, value = line.partition(":")
                if name:
                    fields[name] = fields.get(name, "") + value.removeprefix(" ")
            out.append(fields)
        return out

    async def wait_frames(self, n: int, timeout: float = 10) -> list[dict[str, str]]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.frames()) < n:
            assert asyncio.get_running_loop().time() < deadline, self.text
            if self._done.done():
                self._done.result()
                raise AssertionError(f"the stream ended: {self.messages}")
            await asyncio.sleep(0.05)
        return self.frames()

    async def hang_up(self, timeout: float = 5) -> None:
        """Disconnect; the app's call must then end, cleanly."""
        self._gone.set()
        await asyncio.wait_for(asyncio.wrap_future(self._done), timeout)
