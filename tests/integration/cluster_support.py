"""A real three-primary Redis Cluster on loopback for the tests (see onsale/bench/cluster.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from onsale.bench.cluster import RANGES, node_of, redis_servers

__all__ = ["RANGES", "node_of", "redis_cluster"]


@contextlib.contextmanager
def redis_cluster() -> Iterator[list[int]]:
    """The primaries' ports, in the order of :data:`RANGES`."""
    with redis_servers(cluster=True) as ports:
        yield ports
