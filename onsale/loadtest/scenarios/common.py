"""What every scenario's buyer does, as the buyer's page does it: join the waiting room,
poll as told (``poll_after_seconds``, ``Retry-After``), hold, check out, pay at Stripe (the
part Stripe.js does in the browser), wait for the webhook to confirm the order, fetch the
tickets. A buyer told ``sold_out`` stops.

Configuration comes from the environment (``onsale loadtest`` sets it):

- ``LOADTEST_EVENT_ID``: the event; ``LOADTEST_TIERS``: its tier ids, comma-separated.
- ``LOADTEST_OPENS_AT``: epoch seconds of the opening (the stampede joins at it).
- ``LOADTEST_STRIPE_URL`` and ``LOADTEST_STRIPE_KEY``: the Stripe API (localstripe) and a
  secret key to pay with; without them buyers stop after checkout.
- ``LOADTEST_OUT``: a directory; ``codes.json`` (error codes seen, counted, and the orders
  buyers paid for and saw confirmed) is written there.
- ``LOADTEST_REQUESTS``: a file; when set, every request is logged there as one line
  ``<start epoch s> <seconds> <status> <failed 0|1> <name>`` (``onsale loadtest --chaos``
  counts the requests in flight during each fault from it).
- ``LOADTEST_RETRY_FOR``: seconds a buyer retries one step answered ``503``, ``502``,
  ``504`` or not at all (a worker restarting, Redis restarting), as the buyer's page does;
  default 90.

In Locust's distributed mode (``onsale loadtest --expect-workers N`` and ``onsale loadtest
--worker``) the master sends this configuration to every worker before any buyer starts,
and each worker reports what its buyers saw back to the master, which writes
``codes.json`` for the whole run.

Requests are named by route template (``/api/events/[id]/queue``) so the stats group.

An event with the bot tax on (``pow_difficulty``, docs/bot-tax.md) answers a tokenless join
``403 pow_required``: the buyer then fetches a challenge, solves it with the ``altcha``
package's solver and joins with ``X-Altcha``, as the buyer's page does with the widget. Each
solve is reported to Locust as a ``POW solve`` entry (its time is the tax). The solve runs
on the worker's one thread: it holds up the worker's other buyers meanwhile, so measure the
tax with enough workers (``--expect-workers``) for the difficulty.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from typing import Any

import altcha
from locust import FastHttpUser, events, task
from locust.exception import StopUser

from onsale.loadtest.scenarios.record import (
    CHANGED,
    CODES,
    CONFIG,
    CONFIRMED,
    ORDERS,
    OUTCOMES,
    PAID,
    finished,
)

RETRY_FOR_S = float(os.environ.get("LOADTEST_RETRY_FOR", "90") or 90)
#: Answers retried after a pause (``Retry-After`` when given); 0 is no answer at all.
RETRY = (0, 502, 503, 504)

QUEUE = "/api/events/[id]/queue"
CHALLENGE = "/api/events/[id]/challenge"
HOLDS = "/api/events/[id]/holds"
CHECKOUT = "/api/holds/[id]/checkout"
ORDER = "/api/orders/[id]"
QR = "/api/tickets/[id]/qr.png"


class Done(Exception):
    """This buyer is finished; ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _code(response: Any) -> str:
    try:
        body = json.loads(response.content or b"{}")
        return str(body.get("code") or f"http_{response.status_code}")
    except (ValueError, AttributeError):
        return f"http_{response.status_code}"


class Buyer(FastHttpUser):
    """One buyer; subclasses choose the quantities and timing."""

    abstract = True
    #: Each buyer has its own keep-alive connection, like a browser.
    connection_timeout = 30.0
    network_timeout = 60.0
    #: After buying, start again as a new visitor (steady load) or stop.
    repeat = False
    #: Chance of releasing the hold instead of paying (steady load's window shoppers).
    abandon = 0.0

    def quantity(self) -> list[dict[str, Any]]:
        return [{"tier_id": CONFIG.tiers[0], "quantity": 1}]

    def before_join(self) -> None:
        """Called once before the first join (the stampede waits for the opening here)."""

    def on_start(self) -> None:
        self.before_join()

    def call(
        self, method: str, path: str, name: str, ok: tuple[int, ...], **kwargs: Any
    ) -> tuple[int, Any]:
        """One request, retried while it is answered ``RETRY`` (for ``RETRY_FOR_S`` at
        most, pausing as told by ``Retry-After`` or backing off). Every attempt counts."""
        deadline = time.monotonic() + RETRY_FOR_S
        pause = 0.5
        while True:
            status, (body, headers) = self.once(method, path, name, ok, **kwargs)
            if status in ok or status not in RETRY or time.monotonic() >= deadline:
                return status, (body, headers)
            OUTCOMES["retries"] += 1
            after = (headers or {}).get("Retry-After")
            try:
                wait = float(after) if after else pause
            except ValueError:
                wait = pause
            time.sleep(wait + random.uniform(0, 0.25))
            pause = min(pause * 2, 4.0)

    def once(
        self, method: str, path: str, name: str, ok: tuple[int, ...], **kwargs: Any
    ) -> tuple[int, Any]:
        """One request; statuses in ``ok`` (and expected refusals) count as successes.
        Every non-2xx answer's ``code`` is counted."""
        with self.client.request(
            method, path, name=name, catch_response=True, **kwargs
        ) as response:
            status = response.status_code
            if status >= 300 or status == 0:
                CODES[f"{name} {_code(response) if status else 'connection_error'}"] += 1
            if status in ok:
                response.success()
            else:
                response.failure(f"{status} {_code(response)}")
            body = None
            if response.content and "json" in (response.headers.get("Content-Type") or ""):
                try:
                    body = response.json()
                except (ValueError, TypeError):
                    body = None
            return status, (body, response.headers)

    # The flow ----------------------------------------------------------------------

    def place(self) -> dict[str, Any]:
        """Join, then poll as told until admitted; ``Done`` when sold out or closed."""
        queue = f"/api/events/{CONFIG.event_id}/queue"
        token: str | None = None
        taxed = False
        while True:
            headers = {"X-Visitor-Token": token} if token else {}
            if token is None:
                if taxed:
                    headers["X-Altcha"] = self.proof_of_work()
                status, (body, answer) = self.call(
                    "POST", queue, f"POST {QUEUE}", (200, 429, 403), headers=headers
                )
            else:
                status, (body, answer) = self.call(
                    "GET", queue, f"GET {QUEUE}", (200, 429), headers=headers
                )
            if status == 403 and str((body or {}).get("code", "")).startswith("pow_"):
                taxed = True  # the bot tax: solve one before the next join
                continue
            if status == 429:
                time.sleep(float(answer.get("Retry-After") or 1))
                continue
            if status != 200 or not body:
                time.sleep(1)
                continue
            token = body["visitor_token"]
            if body["state"] == "admitted":
                return dict(body)
            if body["state"] in ("sold_out", "closed"):
                raise Done(body["state"])
            time.sleep(max(float(body["poll_after_seconds"]), 0.2))

    def proof_of_work(self) -> str:
        """A solved challenge of the event (ALTCHA payload), or "" when none is to be had
        (the join then says why). The solve's time is reported as ``POW solve``."""
        path = f"/api/events/{CONFIG.event_id}/challenge"
        status, (made, _) = self.call("GET", path, f"GET {CHALLENGE}", (200,))
        if status != 200 or not made or not made.get("required"):
            return ""
        started = time.perf_counter()
        challenge = altcha.Challenge.from_dict(made)
        solution = altcha.solve_challenge(challenge, timeout=RETRY_FOR_S)
        events.request.fire(  # type: ignore[no-untyped-call]  # Locust's
            request_type="POW",
            name="solve",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=int(made.get("difficulty", 0)),
            response=None,
            exception=None if solution else TimeoutError("no solution in time"),
            context={},
        )
        OUTCOMES["pow_solved" if solution else "pow_timeouts"] += 1
        return altcha.Payload(challenge, solution).to_base64() if solution else ""

    def hold(self, admission: str) -> dict[str, Any]:
        status, (body, _) = self.call(
            "POST",
            f"/api/events/{CONFIG.event_id}/holds",
            f"POST {HOLDS}",
            (201, 409),
            json={"items": self.quantity()},
            headers={"Authorization": f"Bearer {admission}"},
        )
        if status == 409:
            # One tier gone is the end for a one-tier buyer; a steady buyer comes back.
            raise Done("hold_refused" if self.repeat else "sold_out")
        if status != 201:
            raise Done(f"hold_{status}")
        OUTCOMES["holds"] += 1
        return dict(body)

    def checkout(self, hold: dict[str, Any]) -> dict[str, Any]:
        hold_id = hold["hold_id"]
        who = uuid.uuid4().hex[:12]
        status, (body, _) = self.call(
            "POST",
            f"/api/holds/{hold_id}/checkout",
            f"POST {CHECKOUT}",
            (201,),
            json={"email": f"{who}@example.com", "name": f"Buyer {who}"},
            headers={"Idempotency-Key": f"lt-{hold_id}"},
        )
        if status != 201:
            raise Done(f"checkout_{status}")
        ORDERS[body["order_id"]] = {
            "order_id": body["order_id"],
            "order_token": body["order_token"],
            "amount": body["amount"],
            "items": hold.get("items", []),
            "tickets": None,
        }
        CHANGED.add(body["order_id"])
        return dict(body)

    def stripe(self, path: str, name: str, form: dict[str, str]) -> dict[str, Any]:
        status, (body, _) = self.call(
            "POST",
            f"{CONFIG.stripe_url}{path}",
            name,
            (200,),
            data=form,
            headers={
                "Authorization": f"Bearer {CONFIG.stripe_key}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        if status != 200:
            raise Done(f"stripe_{status}")
        return dict(body)

    def pay(self, intent_id: str) -> None:
        """What Stripe.js does: a card payment method, attached, then confirmed."""
        method = self.stripe(
            "/v1/payment_methods",
            "stripe: POST /v1/payment_methods",
            {
                "type": "card",
                "card[number]": "4242424242424242",
                "card[exp_month]": "12",
                "card[exp_year]": str(time.gmtime().tm_year + 5),  # never an expired card
                "card[cvc]": "123",
            },
        )
        self.stripe(
            f"/v1/payment_intents/{intent_id}",
            "stripe: POST /v1/payment_intents/[id]",
            {"payment_method": method["id"]},
        )
        intent = self.stripe(
            f"/v1/payment_intents/{intent_id}/confirm",
            "stripe: POST /v1/payment_intents/[id]/confirm",
            {},
        )
        if intent.get("status") != "succeeded":
            raise Done("payment_failed")
        PAID.append(str(intent.get("metadata", {}).get("order_id") or intent_id))

    def confirmed(self, order: dict[str, Any], deadline_s: float = 120) -> dict[str, Any]:
        """Polls the order until the webhook has confirmed it, as the buyer's page does."""
        auth = {"Authorization": f"Bearer {order['order_token']}"}
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            status, (body, _) = self.call(
                "GET", f"/api/orders/{order['order_id']}", f"GET {ORDER}", (200,), headers=auth
            )
            if status == 200 and body["status"] != "pending":
                if body["status"] != "confirmed":
                    raise Done(f"order_{body['status']}")
                return dict(body)
            time.sleep(0.5)
        raise Done("order_not_confirmed")

    def buy(self) -> str:
        admitted = self.place()
        hold = self.hold(admitted["admission_token"])
        if self.abandon and random.random() < self.abandon:
            self.call(
                "DELETE",
                f"/api/holds/{hold['hold_id']}",
                "DELETE /api/holds/[id]",
                (204,),
                headers={"Authorization": f"Bearer {admitted['admission_token']}"},
            )
            return "abandoned"
        order = self.checkout(hold)
        if not (CONFIG.stripe_url and CONFIG.stripe_key) or order["payment"] is None:
            return "checked_out"
        self.pay(order["payment"]["payment_intent_id"])
        mine = self.confirmed(order)
        OUTCOMES["orders"] += 1
        CONFIRMED.append(order["order_id"])
        ORDERS[order["order_id"]]["tickets"] = [
            [t["ticket_id"], t["tier_id"]] for t in mine["tickets"]
        ]
        CHANGED.add(order["order_id"])
        auth = {"Authorization": f"Bearer {order['order_token']}"}
        for ticket in mine["tickets"]:
            self.ticket(ticket["ticket_id"], auth)
        return "bought"

    def ticket(self, ticket_id: str, auth: dict[str, str], deadline_s: float = 60) -> None:
        """The QR image; ``ticket_not_found`` until the committer has written the ticket to
        Postgres (the order reads as confirmed from Redis before that), so retried."""
        deadline = time.monotonic() + deadline_s
        while True:
            last = time.monotonic() >= deadline
            status, _ = self.call(
                "GET",
                f"/api/tickets/{ticket_id}/qr.png",
                f"GET {QR}",
                (200,) if last else (200, 404),
                headers=auth,
            )
            if status != 404 or last:
                return
            time.sleep(0.5)

    @task
    def shop(self) -> None:
        try:
            outcome = self.buy()
        except Done as done:
            outcome = done.reason
        OUTCOMES[outcome] += 1
        if self.repeat and outcome != "sold_out":
            return
        _finish(self)
        raise StopUser


def _finish(user: Buyer) -> None:
    from locust.runners import WorkerRunner

    runner = user.environment.runner
    if isinstance(runner, WorkerRunner):
        runner.send_message("onsale_finished", {"buyers": 1})  # the master counts everyone's buyers
    elif runner is not None:
        finished(runner, 1)
