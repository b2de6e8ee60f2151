"""The signing key: both accepted encodings, and its public JWK."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from onsale import signing
from onsale.config import ConfigError


def test_pem_and_seed_load_the_same_key() -> None:
    pem = signing.generate_pem()
    key = signing.load(pem)
    seed = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    again = signing.load(base64.urlsafe_b64encode(seed).decode().rstrip("="))
    assert signing.jwk(again.public_key()) == signing.jwk(key.public_key())


@pytest.mark.parametrize("bad", ["", "abc", "-----BEGIN PRIVATE KEY-----\nxx\n", "A" * 60])
def test_bad_keys_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="ONSALE_SIGNING_KEY"):
        signing.load(bad)


def test_jwk_shape_and_stable_kid() -> None:
    key = signing.load(signing.generate_pem()).public_key()
    jwk = signing.jwk(key)
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["alg"] == "EdDSA"
    assert len(signing.b64url_decode(jwk["x"])) == 32
    assert jwk["kid"] == signing.key_id(key)
