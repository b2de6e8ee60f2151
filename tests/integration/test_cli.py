"""The ``onsale`` command as an operator runs it: real processes, real servers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from onsale import signing
from tests.conftest import ADMIN_TOKEN
from tests.integration.api_support import EVENT
from tests.integration.process_support import clean_env, free_port, gateway, onsale


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        ("serve", "ONSALE_REDIS_URL, ONSALE_DATABASE_URL, ONSALE_ADMIN_TOKEN, ONSALE_SIGNING_KEY"),
        ("migrate", "ONSALE_DATABASE_URL"),
    ],
)
def test_missing_settings_fail_with_one_line(command: str, missing: str) -> None:
    done = onsale(command, env=clean_env())
    assert done.returncode == 2
    assert done.stderr == f"onsale: missing required environment variable(s): {missing}\n"


def test_serve_with_a_stripe_key_needs_the_webhook_secret() -> None:
    # Without the secret every webhook is refused: buyers would pay and nothing confirm.
    env = clean_env(
        ONSALE_REDIS_URL="redis://127.0.0.1:1/0",
        ONSALE_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        ONSALE_ADMIN_TOKEN=ADMIN_TOKEN,
        ONSALE_SIGNING_KEY=signing.generate_pem(),
        ONSALE_STRIPE_SECRET_KEY="sk_test_x",
    )
    done = subprocess.run(
        [sys.executable, "-m", "onsale", "serve", "--port", str(free_port())],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        "onsale: missing required environment variable(s): ONSALE_STRIPE_WEBHOOK_SECRET\n"
    )


def test_migrate_is_idempotent(database_url: str) -> None:
    env = clean_env(ONSALE_DATABASE_URL=database_url)
    done = onsale("migrate", env=env)
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout


@pytest.fixture
def server(redis_url: str, database_url: str) -> Iterator[str]:
    with gateway(None, redis_url, database_url, workers=2) as base:
        yield base


def test_serve_with_workers(server: str) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = httpx.post(f"{server}/api/events", json=EVENT, headers=headers)
    assert r.status_code == 201, r.text
    # Any worker answers for the event: all state is in Redis and Postgres.
    for _ in range(10):
        assert httpx.get(f"{server}/api/events/{r.json()['id']}").status_code == 200
