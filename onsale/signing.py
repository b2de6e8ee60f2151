"""The Ed25519 signing key: admission tokens and ticket QR signatures, and its JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from onsale.config import ConfigError


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load(value: str) -> Ed25519PrivateKey:
    """From PEM (PKCS#8) or base64url of the 32-byte seed, as ``ONSALE_SIGNING_KEY`` allows."""
    text = value.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ConfigError("ONSALE_SIGNING_KEY: the PEM key is not an Ed25519 key")
            return key
        seed = b64url_decode(text)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"ONSALE_SIGNING_KEY: cannot read the key ({exc})") from None
    if len(seed) != 32:
        raise ConfigError("ONSALE_SIGNING_KEY: expected PEM or base64url of a 32-byte seed")
    return Ed25519PrivateKey.from_private_bytes(seed)


def generate_pem() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def load_or_create(path: Path) -> str:
    """The dev key in the data dir, created (readable by the owner only) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(generate_pem())
    return path.read_text()


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A stable ``kid``: the RFC 7638 thumbprint of the public JWK."""
    x = b64url(public_raw(key))
    canonical = '{"crv":"Ed25519","kty":"OKP","x":"' + x + '"}'
    return b64url(hashlib.sha256(canonical.encode()).digest())


def jwk(key: Ed25519PublicKey) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(public_raw(key)),
        "kid": key_id(key),
        "alg": "EdDSA",
        "use": "sig",
    }


def derive(key: Ed25519PrivateKey, purpose: bytes) -> bytes:
    """A symmetric secret for one purpose (HMAC tokens), derived from the signing key."""
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return hashlib.sha256(purpose + b"\0" + seed).digest()


def mac(secret: bytes, message: str) -> str:
    """A short (144-bit) HMAC-SHA256 tag, base64url."""
    return b64url(hmac.new(secret, message.encode(), hashlib.sha256).digest()[:18])
