"""Webhook delivery as Stripe does it, for the chaos run.

localstripe posts each event once and forgets it when the post fails; Stripe retries an
event that was not answered 2xx for days. Under faults that difference decides whether a
paid order can be lost, so in ``onsale loadtest --chaos`` localstripe posts to this relay,
which forwards to the gateway and redelivers every event not acknowledged, with backoff,
signed afresh each time (a Stripe-Signature is only good for 5 minutes), until acknowledged.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import msgspec


class Delivery(msgspec.Struct):
    """One attempt: when (epoch s), which event type, its answer (0: none)."""

    at: float
    kind: str
    status: int
    redelivery: bool


class Relay:
    """Forwards signed events to ``target``; redelivers the ones not acknowledged."""

    def __init__(self, target: str, secret: str, max_backoff_s: float = 4.0) -> None:
        self.target, self.secret, self.max_backoff_s = target, secret, max_backoff_s
        self.deliveries: list[Delivery] = []
        #: Events received from the emulator, and those that needed redelivering.
        self.received = 0
        self.redelivered: set[bytes] = set()
        #: Events not yet acknowledged: payload -> (type, attempts, next attempt monotonic).
        self._owed: dict[bytes, tuple[str, int, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._http = httpx.Client(timeout=15)
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                relay.receive(payload)
                self.send_response(200)  # the relay owns the delivery from here on
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/stripe"
        self._threads = [
            threading.Thread(target=self._server.serve_forever, daemon=True),
            threading.Thread(target=self._redeliver, daemon=True),
        ]

    def receive(self, payload: bytes) -> None:
        kind = str(msgspec.json.decode(payload).get("type", "?"))
        with self._lock:
            self.received += 1
        if not self._post(payload, kind, redelivery=False):
            with self._lock:
                self._owed[payload] = (kind, 1, time.monotonic() + 0.5)
                self.redelivered.add(payload)

    def _post(self, payload: bytes, kind: str, *, redelivery: bool) -> bool:
        stamp = int(time.time())
        signed = b"%d." % stamp + payload
        signature = hmac.new(self.secret.encode(), signed, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": f"t={stamp},v1={signature}",
        }
        try:
            status = self._http.post(self.target, content=payload, headers=headers).status_code
        except httpx.HTTPError:
            status = 0
        with self._lock:
            self.deliveries.append(Delivery(time.time(), kind, status, redelivery))
        return 200 <= status < 300

    def _redeliver(self) -> None:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            with self._lock:
                due = [(p, k, n) for p, (k, n, at) in self._owed.items() if at <= now]
            for payload, kind, attempts in due:
                if self._post(payload, kind, redelivery=True):
                    with self._lock:
                        self._owed.pop(payload, None)
                    continue
                backoff = min(0.5 * 2**attempts, self.max_backoff_s)
                with self._lock:
                    self._owed[payload] = (kind, attempts + 1, time.monotonic() + backoff)

    @property
    def owed(self) -> int:
        """Events not acknowledged yet (still being redelivered)."""
        with self._lock:
            return len(self._owed)

    def counts(self, since: float = 0.0, until: float = float("inf")) -> Counter[str]:
        """Attempts between two epoch instants: ``delivered``, ``refused`` (answered but
        not 2xx, or no answer) and ``redelivered`` (a retry that was acknowledged)."""
        found: Counter[str] = Counter()
        with self._lock:
            attempts = [d for d in self.deliveries if since <= d.at <= until]
        for d in attempts:
            ok = 200 <= d.status < 300
            found["attempts"] += 1
            found["redelivered" if ok and d.redelivery else "delivered" if ok else "refused"] += 1
        return found

    @contextlib.contextmanager
    def running(self) -> Iterator[Relay]:
        for thread in self._threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._server.shutdown()
            self._server.server_close()
            self._http.close()
