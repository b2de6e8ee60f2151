"""Fixtures the browser tests share: one Chromium per module, and one gateway per module
(``onsale serve`` as an operator runs it), plain or paying at the Stripe emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.integration.page_support import chromium, paying_gateway
from tests.integration.process_support import gateway


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(
    redis_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A gateway without payments (a module that pays overrides it with ``paying_server``)."""
    with gateway(tmp_path_factory.mktemp("serve") / "serve.log", redis_url, database_url) as base:
        yield base


@pytest.fixture(scope="module")
def paying_server(
    redis_url: str, database_url: str, stripe_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A gateway whose buyers pay at the session's Stripe emulator (signed webhooks)."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with paying_gateway(log, redis_url, database_url, stripe_url) as base:
        yield base
