"""Last tickets: more buyers than tickets, all admitted at once (a very high admission
rate), each holding 1. The fight is in the hold script: it must never oversell."""

from __future__ import annotations

from onsale.loadtest.scenarios.common import Buyer


class LastTicketsBuyer(Buyer):
    pass
