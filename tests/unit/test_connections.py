"""The hot path's packer: commands as Redis reads them off the wire."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from onsale.connections import pack
from onsale.queue.room import _bitfield_args, _bitfield_packed


def test_pack_is_resp() -> None:
    assert pack(("SCRIPT LOAD", "return 1")) == (
        b"*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n$8\r\nreturn 1\r\n"
    )
    assert pack(("EVALSHA", "ab", 1, "k", b"\x00")) == (
        b"*5\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\n\x00\r\n"
    )


@given(
    st.lists(
        st.tuples(st.integers(0, 10**12), st.integers(0, 2**62)),
        max_size=50,
        unique_by=lambda m: m[0],
    )
)
def test_seen_marks_packed_at_once_are_the_packed_command(marks: list[tuple[int, int]]) -> None:
    """The lobby's BITFIELD of seen marks, packed in one go, is the command ``pack`` makes."""
    key = "{ev:e}:q:alive"
    assert _bitfield_packed(key, marks) == pack(_bitfield_args(key, marks))
