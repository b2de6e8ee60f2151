"""Password hashes: Argon2id, and the dummy hash that makes an unknown e-mail cost the same."""

from __future__ import annotations

import argon2

from onsale.accounts import passwords


def test_hashes_are_argon2id_and_verify() -> None:
    stored = passwords.hash_sync("a long passphrase")
    assert stored.startswith("$argon2id$")
    assert passwords._verify(stored, "a long passphrase")
    assert not passwords._verify(stored, "another passphrase")
    assert not passwords._verify("not a hash", "a long passphrase")


def test_the_dummy_hash_costs_what_a_real_one_does_and_matches_nothing() -> None:
    real = argon2.extract_parameters(passwords.hash_sync("x" * 12))
    assert argon2.extract_parameters(passwords.DUMMY) == real
    assert not passwords._verify(None, "")
    assert not passwords._verify(None, "a long passphrase")
