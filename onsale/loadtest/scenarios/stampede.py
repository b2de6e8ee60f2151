"""Stampede: every buyer joins within the same second of the opening, then waits, holds
1 or 2 tickets, pays, and collects the tickets. Buyers told ``sold_out`` stop."""

from __future__ import annotations

import random
import time
from typing import Any

from onsale.loadtest.scenarios.common import Buyer
from onsale.loadtest.scenarios.record import CONFIG


class StampedeBuyer(Buyer):
    def before_join(self) -> None:
        # Everyone is spawned before the opening and arrives in the second around it.
        delay = CONFIG.opens_at - time.time() + random.uniform(-0.5, 0.5)
        if delay > 0:
            time.sleep(delay)

    def quantity(self) -> list[dict[str, Any]]:
        return [{"tier_id": CONFIG.tiers[0], "quantity": random.choice((1, 1, 2))}]
