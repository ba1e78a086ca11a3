"""A Redis Cluster of three masters on loopback, as the cluster tests run against: started on free ports, never left running."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import redis

from sessionrec.stream.local.servers import HOST, ServiceError, free_port, start_redis

MASTERS = 3


@contextmanager
def redis_cluster(masters: int = MASTERS, timeout_s: float = 30.0) -> Iterator[str]:
    """Yield the URL of one node of a new cluster (``masters`` masters, no replicas, every slot served); stop every node after."""
    with ExitStack() as stack:
        nodes = []
        for _ in range(masters):
            node = start_redis(cluster_port=free_port())
            stack.callback(node.stop)
            nodes.append(node)
        cli = shutil.which("redis-cli")
        if cli is None:
            raise ServiceError("redis-cli not found on PATH (Debian's redis-tools): it creates the cluster")
        subprocess.run([cli, "--cluster", "create", *[f"{HOST}:{node.port}" for node in nodes], "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=timeout_s)
        deadline = time.monotonic() + timeout_s
        while not all(_ok(node.port) for node in nodes):  # every node has learned the others' slots
            if time.monotonic() > deadline:
                raise ServiceError(f"the Redis Cluster on ports {[node.port for node in nodes]} did not reach cluster_state:ok")
            time.sleep(0.1)
        yield nodes[0].url


def _ok(port: int) -> bool:
    with redis.Redis(host=HOST, port=port) as client:
        return client.cluster("info")["cluster_state"] == "ok"
