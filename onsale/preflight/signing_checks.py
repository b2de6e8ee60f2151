"""The signing key loads, and the public URL's ``/.well-known/jwks.json`` serves its public
key (what scanners and anyone verifying a ticket or an admission token fetch)."""

from __future__ import annotations

import httpx

from onsale import signing
from onsale.config import ConfigError
from onsale.preflight.result import Check, fail, passed

JWKS_PATH = "/.well-known/jwks.json"


async def checks(signing_key: str, public_url: str, timeout: float = 3.0) -> list[Check]:
    if not signing_key:
        return [
            fail(
                "keys.signing",
                "ONSALE_SIGNING_KEY is not set: no admission token or ticket can be signed",
                "set it to an Ed25519 key (PEM), the same on every gateway",
            )
        ]
    try:
        key = signing.load(signing_key)
    except ConfigError as exc:
        return [
            fail(
                "keys.signing",
                f"does not load: {exc}",
                "set it to an Ed25519 private key (PEM or base64url seed)",
            )
        ]
    mine = signing.jwk(key.public_key())
    found = [passed("keys.signing", f"Ed25519 key {mine.get('kid', '')} loads")]
    url = public_url.rstrip("/") + JWKS_PATH
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            answer = await http.get(url)
        served = answer.json().get("keys", []) if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        found.append(
            fail(
                "keys.jwks",
                f"{url}: {type(exc).__name__}: {exc}",
                "start the gateways, or fix ONSALE_PUBLIC_URL",
            )
        )
        return found
    if served is None:
        found.append(
            fail(
                "keys.jwks",
                f"{url} answered {answer.status_code}",
                "route /.well-known/ to the gateways",
            )
        )
    elif mine not in served:
        found.append(
            fail(
                "keys.jwks",
                f"{url} serves other keys than this ONSALE_SIGNING_KEY",
                "give every gateway the same ONSALE_SIGNING_KEY, and restart them",
            )
        )
    else:
        found.append(passed("keys.jwks", f"{url} serves this key"))
    return found
