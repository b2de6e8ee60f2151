"""The live feed's snapshots take one more member without changing what /stats says."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onsale.events.live import with_member

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=8), _json, max_size=5), _json)
def test_a_member_is_added_and_nothing_else_changes(
    snapshot: dict[str, object], value: object
) -> None:
    snapshot.pop("checkin_alerts", None)
    raw = json.dumps(snapshot, separators=(",", ":")).encode()
    out = json.loads(with_member(raw, "checkin_alerts", json.dumps(value).encode()))
    assert out == {**snapshot, "checkin_alerts": value}


def test_only_an_object_takes_a_member() -> None:
    with pytest.raises(ValueError):
        with_member(b"[1]", "x", b"1")
