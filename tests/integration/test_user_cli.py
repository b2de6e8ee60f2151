"""``onsale user add`` and ``onsale user list`` as an operator runs them."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import uuid

import pytest
from argon2 import PasswordHasher

from onsale import cli
from onsale.db import connect
from tests.integration.process_support import clean_env


def _add(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    """``onsale user add ...`` in this process (a new interpreter per call is slow)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(["user", "add", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _verifies(database_url: str, email: str, password: str) -> bool:
    async def stored() -> str:
        conn = await connect(database_url)
        try:
            digest: str = await conn.fetchval(
                "SELECT password_hash FROM users WHERE email = $1", email
            )
            return digest
        finally:
            await conn.close()

    return PasswordHasher().verify(asyncio.run(stored()), password)


def test_user_add_and_list(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONSALE_DATABASE_URL", database_url)
    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    code, out, err = _add(
        monkeypatch, capsys, email, "--role", "organizer", "--password-stdin",
        stdin="a cli passphrase\n",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith(f"created organizer {email} (")
    assert _verifies(database_url, email, "a cli passphrase")

    # Without a terminal or --password-stdin, a password is made and shown once.
    other = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    code, out, err = _add(monkeypatch, capsys, other, "--role", "staff")
    assert code == 0, err
    assert _verifies(database_url, other, out.split("password: ", 1)[1].strip())

    code, _, err = _add(monkeypatch, capsys, email.upper(), "--role", "admin",
                        "--password-stdin", stdin="another passphrase\n")  # fmt: skip
    assert (code, err.strip()) == (1, f"onsale: {email.upper()} has an account")
    code, _, err = _add(monkeypatch, capsys, "x@example.com", "--role", "staff",
                        "--password-stdin", stdin="short\n")  # fmt: skip
    assert code == 2 and "at least 10" in err

    # The real command, once.
    done = subprocess.run(
        [sys.executable, "-m", "onsale", "user", "list"],
        capture_output=True,
        text=True,
        env=clean_env(ONSALE_DATABASE_URL=database_url),
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in done.stdout.splitlines()[1:]}
    assert rows[email] == ["organizer", "active"]
    assert rows[other] == ["staff", "active"]
