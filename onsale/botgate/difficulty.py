"""How hard an event's challenge is now: its own difficulty, doubled with the join rate."""

from __future__ import annotations

from dataclasses import dataclass

#: Seconds of joins the rate is measured over (all gateways, counted in Redis).
WINDOW_S = 5


@dataclass(frozen=True)
class Rule:
    #: Joins per second per doubling; 0: the difficulty never rises by itself.
    rate_step: int
    #: The rise stops here (never below the event's own difficulty).
    max_difficulty: int


def effective(base: int, joins_per_s: float, rule: Rule) -> int:
    """``base`` doubled once for each whole ``rate_step`` of joins per second, capped at
    ``max(base, max_difficulty)``. 0 stays 0: proof-of-work off is never turned on by load."""
    if base <= 0:
        return 0
    cap = max(base, rule.max_difficulty)
    if rule.rate_step <= 0 or joins_per_s < rule.rate_step:
        return base
    doublings = int(joins_per_s // rule.rate_step)
    # Past the cap's bit length more doublings change nothing (and 2**n stays small).
    return min(cap, base << min(doublings, cap.bit_length()))
