"""Whatever a client sends as its proof-of-work, the check answers pow_invalid (never a 500),
and a real solution passes only for its own event, unaltered."""

from __future__ import annotations

import base64
import json
from typing import Any, cast

import altcha
import pytest
from hypothesis import given
from hypothesis import strategies as st

from onsale import signing
from onsale.botgate import BotGate, PowRejected, PowRejection
from onsale.botgate.gate import PowState
from onsale.config import PowSettings

KEY = signing.load(signing.generate_pem())
GATE = BotGate(None, PowSettings(), KEY, scripts=cast(Any, object()))
STATE = PowState(armed=True, base=1000, difficulty=1000, joins_per_s=0.0)
EVENT = "9b1f3c57-56a4-4d3a-9e49-7a0b2f6d1c00"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def refused(payload: str) -> PowRejected:
    with pytest.raises(PowRejected) as caught:
        GATE._verified(EVENT, payload, STATE)
    assert caught.value.reason is PowRejection.POW_INVALID
    return caught.value


@given(st.text(max_size=300))
def test_any_text_is_refused(payload: str) -> None:
    refused(payload)


@given(json_values)
def test_any_json_is_refused(doc: Any) -> None:
    refused(base64.b64encode(json.dumps(doc).encode()).decode())


def _solved(event: str = EVENT, difficulty: int = 1000) -> str:
    made = altcha.create_challenge(
        "SHA-256",
        1,
        counter=777,
        expires_at=2**40,
        data={"event": event, "difficulty": difficulty},
        hmac_secret=GATE._secret,
        hmac_key_secret=GATE._key_secret,
    )
    solution = altcha.solve_challenge(made)
    assert solution is not None
    return altcha.Payload(made, solution).to_base64()


PAYLOAD = _solved()


def test_a_real_solution_passes_and_altered_ones_do_not() -> None:
    assert GATE._verified(EVENT, PAYLOAD, STATE).data == {"event": EVENT, "difficulty": 1000}
    assert "another event" in str(refused(_solved(event="other")))
    assert "easier" in str(refused(_solved(difficulty=999)))


paths = st.sampled_from(
    [
        ("challenge", "signature"),
        ("challenge", "parameters", "salt"),
        ("challenge", "parameters", "nonce"),
        ("challenge", "parameters", "keyPrefix"),
        ("challenge", "parameters", "keySignature"),
        ("challenge", "parameters", "expiresAt"),
        ("challenge", "parameters", "algorithm"),
        ("challenge", "parameters", "cost"),
        ("challenge", "parameters", "data"),
        ("solution", "derivedKey"),
    ]
)


@given(paths, json_values)
def test_any_altered_field_is_refused(path: tuple[str, ...], value: Any) -> None:
    doc = json.loads(base64.b64decode(PAYLOAD))
    where = doc
    for name in path[:-1]:
        where = where[name]
    if where[path[-1]] == value:
        return
    where[path[-1]] = value
    refused(base64.b64encode(json.dumps(doc).encode()).decode())
