"""The embedded services: real servers from wheels, durable, and never orphaned."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import redis

from onsale.embedded import EmbeddedPostgres, EmbeddedRedis


def _gone(pid: int, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie child of ours still answers kill(0); reap it if it is ours.
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return False


def test_redis_keeps_data_across_restarts(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    with server as url:
        redis.Redis.from_url(url).set("k", "v")
        pid = server.proc.pid if server.proc else 0
    assert _gone(pid)
    with EmbeddedRedis(tmp_path) as url:
        assert redis.Redis.from_url(url).get("k") == b"v"


def test_postgres_keeps_data_across_restarts(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # as root the server runs as nobody

    async def write(url: str) -> None:
        conn = await asyncpg.connect(url)
        await conn.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
        await conn.close()

    async def read(url: str) -> int:
        conn = await asyncpg.connect(url)
        value: int = await conn.fetchval("SELECT x FROM t")
        await conn.close()
        return value

    with EmbeddedPostgres(tmp_path, database="keep") as url:
        assert url.startswith("postgresql://postgres@/keep?host=/")
        asyncio.run(write(url))
    with EmbeddedPostgres(tmp_path, database="keep") as url:
        assert asyncio.run(read(url)) == 42


def test_services_die_with_a_killed_parent(tmp_path: Path) -> None:
    """SIGKILL the parent (no cleanup runs): its servers must not outlive it."""
    tmp_path.chmod(0o755)
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from onsale.embedded import EmbeddedPostgres, EmbeddedRedis\n"
        "r = EmbeddedRedis(Path(sys.argv[1])); r.start()\n"
        "p = EmbeddedPostgres(Path(sys.argv[1])); p.start()\n"
        "print(r.proc.pid, p.proc.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    argv = [sys.executable, "-c", script, str(tmp_path)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as parent:
        assert parent.stdout is not None
        redis_pid, pg_pid = map(int, parent.stdout.readline().split())
        parent.send_signal(signal.SIGKILL)
    assert _gone(redis_pid), "redis-server outlived its parent"
    assert _gone(pg_pid), "postgres outlived its parent"
