"""``onsale user add EMAIL --role R [--password-stdin]`` and ``onsale user list``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import secrets
import sys

from onsale import config
from onsale.accounts import users
from onsale.accounts.models import AccountRejected, Role, User
from onsale.db import create_pool

#: The shortest password accepted (as by ``POST /api/users``).
MIN_PASSWORD = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="user_command", required=True, metavar="action")
    add = sub.add_parser("add", help="create a user (the password is hashed with Argon2id)")
    add.add_argument("email")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin (else: asked twice on a "
        "terminal, or generated and printed)",
    )
    add.set_defaults(func=_add)
    listing = sub.add_parser("list", help="every user: e-mail, role, state, created")
    listing.set_defaults(func=_list)


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password, and whether it was generated (so is to be printed)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if sys.stdin.isatty():
        first = getpass.getpass("password (empty: generate one): ")
        if first:
            if getpass.getpass("again: ") != first:
                raise SystemExit("onsale: the passwords differ")
            return first, False
    return secrets.token_urlsafe(15), True


def _add(args: argparse.Namespace) -> int:
    settings = config.load()
    settings.require("ONSALE_DATABASE_URL")
    password, generated = _password(args)
    if len(password) < MIN_PASSWORD:
        print(f"onsale: a password needs at least {MIN_PASSWORD} characters", file=sys.stderr)
        return 2

    async def add() -> User:
        pool = await create_pool(settings.database.url, min_size=1, max_size=1)
        try:
            return await users.create(pool, args.email, Role(args.role), password)
        finally:
            await pool.close()

    try:
        user = asyncio.run(add())
    except AccountRejected as exc:
        print(f"onsale: {exc.detail}", file=sys.stderr)
        return 1
    print(f"created {user.role} {user.email} ({user.id})")
    if generated:
        print(f"password: {password}")
    return 0


def _list(args: argparse.Namespace) -> int:
    settings = config.load()
    settings.require("ONSALE_DATABASE_URL")

    async def fetch() -> list[User]:
        pool = await create_pool(settings.database.url, min_size=1, max_size=1)
        try:
            return await users.listing(pool)
        finally:
            await pool.close()

    found = asyncio.run(fetch())
    width = max([len(u.email) for u in found] + [5])
    print(f"{'email':<{width}}  {'role':<9}  {'state':<8}  created")
    for u in found:
        state = "disabled" if u.disabled else "active"
        created = u.created_at.strftime("%Y-%m-%d %H:%M") if u.created_at else ""
        print(f"{u.email:<{width}}  {u.role.value:<9}  {state:<8}  {created}")
    return 0
