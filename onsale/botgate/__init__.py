"""The bot tax: proof-of-work (ALTCHA) a browser solves before it may join a waiting room."""

from onsale.botgate.difficulty import Rule, effective
from onsale.botgate.errors import PowRejected, PowRejection
from onsale.botgate.gate import BotGate

__all__ = ["BotGate", "PowRejected", "PowRejection", "Rule", "effective"]
