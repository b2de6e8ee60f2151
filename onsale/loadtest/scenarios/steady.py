"""Steady mixed load: buyers arrive continuously, look at the event, queue, hold 1 to 3
tickets of a random tier, and most pay; some release their hold. After each visit a
buyer comes back as a new visitor, until the event is sold out."""

from __future__ import annotations

import random
from typing import Any

from onsale.loadtest.scenarios.common import Buyer
from onsale.loadtest.scenarios.record import CONFIG


class SteadyBuyer(Buyer):
    repeat = True
    abandon = 0.2

    def quantity(self) -> list[dict[str, Any]]:
        return [{"tier_id": random.choice(CONFIG.tiers), "quantity": random.randint(1, 2)}]

    def buy(self) -> str:
        self.call("GET", f"/api/events/{CONFIG.event_id}", "GET /api/events/[id]", (200,))
        return str(super().buy())
