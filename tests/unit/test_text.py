"""The boundary's text rules: no control character anywhere, the end of the text included
(a regex's ``$`` would let one final line break through)."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from onsale.text import EMAIL, LINE, TEXT

Line = Annotated[str, LINE]
Text = Annotated[str, TEXT]
Email = Annotated[str, EMAIL]
CONTROL = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]
TEXT_CONTROL = [c for c in CONTROL if c not in "\t\n\r"]


def _ok(value: str, kind: object) -> bool:
    try:
        msgspec.convert(value, type=kind)
    except msgspec.ValidationError:
        return False
    return True


@pytest.mark.parametrize("control", CONTROL)
def test_a_line_has_no_control_character_even_at_its_end(control: str) -> None:
    for value in (f"Ada{control}", f"{control}Ada", f"A{control}da"):
        assert not _ok(value, Line), repr(value)
    assert not _ok(f"ada@example.org{control}", Email)


@pytest.mark.parametrize("control", TEXT_CONTROL)
def test_free_text_keeps_line_breaks_only(control: str) -> None:
    assert not _ok(f"Doors at 7{control}", Text)
    assert _ok("Doors at 7\n", Text) and _ok("Doors\r\nat 7\t", Text)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc",))))
def test_text_without_control_characters_is_a_line(value: str) -> None:
    assert _ok(value, Line) and _ok(value, Text)
