"""The hot path's packer: commands as Redis reads them off the wire."""

from __future__ import annotations

from onsale.connections import pack


def test_pack_is_resp() -> None:
    assert pack(("SCRIPT LOAD", "return 1")) == (
        b"*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n$8\r\nreturn 1\r\n"
    )
    assert pack(("EVALSHA", "ab", 1, "k", b"\x00")) == (
        b"*5\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\n\x00\r\n"
    )
