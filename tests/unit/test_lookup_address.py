"""Find my tickets: which addresses are taken, and how they are matched and named."""

from __future__ import annotations

import pytest

from onsale.checkout.lookup import digest, normalize


@pytest.mark.parametrize(
    ("typed", "matched"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  Ada@Example.COM ", "ada@example.com"),
        ("a.b+tickets@mail.example.org", "a.b+tickets@mail.example.org"),
    ],
)
def test_addresses_are_matched_lowercase_and_trimmed(typed: str, matched: str) -> None:
    assert normalize(typed) == matched


@pytest.mark.parametrize(
    "typed",
    ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "a@b@example.com",
     "x" * 65 + "@example.com", "a@" + "b" * 250 + ".com"],
)  # fmt: skip
def test_what_is_not_an_address_is_refused(typed: str) -> None:
    assert normalize(typed) is None


def test_an_address_is_named_by_a_digest_not_by_itself() -> None:
    name = digest("ada@example.com")
    assert "ada" not in name and len(name) == 32
    assert name == digest("ada@example.com") != digest("bob@example.com")
