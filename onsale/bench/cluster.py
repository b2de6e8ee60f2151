"""Throwaway Redis servers on loopback: one plain Redis, or a three-primary Redis Cluster
made from plain redis-server processes (slots assigned here: CLUSTER ADDSLOTS, since
Redis 6.2 has no ADDSLOTSRANGE). For benchmarks and tests."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from onsale.embedded import free_port, redis_binary

#: The slots of each primary, as ``redis-cli --cluster create`` would split them.
RANGES = ((0, 5460), (5461, 10922), (10923, 16383))


def _until(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(redis.RedisError):
            if check():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _form(nodes: list[Any], ports: list[int]) -> None:
    """Slots to each primary, then the primaries meet, until every node says ok."""
    for node, (first, last) in zip(nodes, RANGES, strict=True):
        slots = list(range(first, last + 1))
        for i in range(0, len(slots), 1000):
            node.execute_command("CLUSTER ADDSLOTS", *slots[i : i + 1000])
    for port in ports[1:]:
        nodes[0].execute_command("CLUSTER MEET", "127.0.0.1", port)

    def ok() -> bool:
        infos = [n.cluster("INFO") for n in nodes]
        return all(
            i["cluster_state"] == "ok" and int(i["cluster_known_nodes"]) == len(ports)
            for i in infos
        )

    _until(ok, "cluster_state:ok on every node")


@contextlib.contextmanager
def redis_servers(cluster: bool) -> Iterator[list[int]]:
    """Start one Redis, or a three-primary cluster; yields the ports (in :data:`RANGES`
    order for a cluster) and removes everything afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="onsale-redis-"))
    procs: list[subprocess.Popen[bytes]] = []
    ports = [free_port(bus=True) for _ in (RANGES if cluster else (None,))]
    try:
        for i, port in enumerate(ports):
            node = workdir / str(i)
            node.mkdir()
            options = {"port": str(port), "bind": "127.0.0.1", "dir": str(node), "save": "",
                       "appendonly": "no", "logfile": str(node / "redis.log")}  # fmt: skip
            if cluster:
                options |= {"cluster-enabled": "yes", "cluster-node-timeout": "5000",
                            "cluster-config-file": str(node / "nodes.conf")}  # fmt: skip
            argv = [redis_binary(), *(x for k, v in options.items() for x in (f"--{k}", v))]
            procs.append(
                subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        nodes = [redis.Redis(port=p, socket_timeout=5) for p in ports]
        try:
            for client, proc in zip(nodes, procs, strict=True):
                _until(client.ping, "redis-server to start")
                if proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {proc.returncode}")
            if cluster:
                _form(nodes, ports)
        finally:
            for client in nodes:
                client.close()
        yield ports
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def node_of(slot: int) -> int:
    """The index (in :data:`RANGES`) of the primary that serves ``slot``."""
    return next(i for i, (first, last) in enumerate(RANGES) if first <= slot <= last)
