"""Settings from the environment."""

from __future__ import annotations

import pytest

from onsale.config import ConfigError, load
from onsale.db.url import redact, with_database


def test_defaults_without_environment() -> None:
    s = load({})
    assert s.redis.url == "" and not s.redis.cluster
    assert s.data_dir == ".onsale"
    assert s.security.rate_limit_exempt == ()


def test_reads_and_converts_variables() -> None:
    s = load(
        {
            "ONSALE_REDIS_URL": "unix:///tmp/r.sock",
            "ONSALE_REDIS_CLUSTER": "1",
            "ONSALE_DATABASE_POOL_MAX": "32",
            "ONSALE_RATE_LIMIT_EXEMPT": "10.0.0.0/8, 127.0.0.1/32,",
            "ONSALE_DATA_DIR": "/var/lib/onsale",
        }
    )
    assert s.redis.url == "unix:///tmp/r.sock" and s.redis.cluster is True
    assert s.database.pool_max == 32
    assert s.security.rate_limit_exempt == ("10.0.0.0/8", "127.0.0.1/32")
    assert s.data_dir == "/var/lib/onsale"


def test_malformed_value_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="pool_max"):
        load({"ONSALE_DATABASE_POOL_MAX": "many"})


def test_require_names_every_missing_variable() -> None:
    s = load({"ONSALE_REDIS_URL": "redis://x"})
    with pytest.raises(ConfigError) as err:
        s.require("ONSALE_REDIS_URL", "ONSALE_DATABASE_URL", "ONSALE_ADMIN_TOKEN")
    assert str(err.value) == (
        "missing required environment variable(s): ONSALE_DATABASE_URL, ONSALE_ADMIN_TOKEN"
    )


def test_socket_urls() -> None:
    url = "postgresql://postgres:@/onsale?host=/tmp/pg/run"
    assert with_database(url, "other") == "postgresql://postgres:@/other?host=/tmp/pg/run"
    assert redact("postgresql://u:hunter2@db/x") == "postgresql://u:***@db/x"
    assert redact(url) == url
