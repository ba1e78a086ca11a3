"""Every Redis key the project uses, under one configurable prefix, laid out in Redis Cluster hash slots.

Keys that one script or transaction touches share a hash tag, so the same
names serve one Redis (where braces are plain text) and a cluster (DESIGN
rule 10). The global slot ``{P}`` holds what every worker shares: the
vocabulary, the epoch, the model registry, the trainer's record and the
heartbeats. Each partition of the clicks topic has a slot ``{P:pN}`` of its
own for what a batch commit writes of that partition: its sessions' states, a
copy of the epoch (what the commit checks), its last applied record and log
incarnation, the committers' sequence numbers, its online counters and its
learning feed. Readers of counters and feeds take every partition's and add
them up; the partition of a session is its click's (Kafka's default
partitioner of the session id, ``partition_of``).
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

from sessionrec.stream.settings import Settings


class Keys:
    def __init__(self, prefix: str, partitions: int = Settings.partitions) -> None:
        self.prefix = prefix
        self.partitions = partitions  # of the clicks topic: the per-partition keys readers add up
        self.tag = tag = f"{{{prefix}}}"  # the global slot's hash tag
        self.vocab_index = f"{tag}:vocab:index"  # hash raw item id -> dense index
        self.vocab_items = f"{tag}:vocab:items"  # list dense index -> raw item id
        self.model_current = f"{tag}:model:current"  # version string of the promoted model
        self.model_history = f"{tag}:model:history"  # kept versions, in the order they last became current, newest first
        self.model_pin = f"{tag}:model:pin"  # the version the pointer is held at, if any
        self.model_events = f"{tag}:model:events"  # list of JSON records of the pointer's moves, newest first
        self.trainer_cycles = f"{tag}:trainer:cycles"  # list of JSON cycle records, newest first
        self.epoch = f"{tag}:epoch"  # set once vocabulary and registry are seeded; gone if Redis lost its data
        self.workers = f"{tag}:workers"  # sorted set: worker id -> time of its last heartbeat

    def every_partition(self) -> range:
        return range(self.partitions)

    def slot(self, partition: int) -> str:
        """The hash tag of ``partition``'s slot."""
        return f"{{{self.prefix}:p{partition}}}"

    def session(self, session_id: str, partition: int) -> str:
        return f"{self.slot(partition)}:s:{session_id}"

    def epoch_copy(self, partition: int) -> str:
        return f"{self.slot(partition)}:epoch"  # the epoch, where the partition's commits can check it; gone if its slot lost its data

    def mark(self, partition: int) -> str:
        return f"{self.slot(partition)}:mark"  # "offset,timestamp,crc" of the partition's last applied click

    def incarnation(self, partition: int) -> str:
        return f"{self.slot(partition)}:incarnation"  # how many times the partition's log started over

    def committed(self, committer: str, partition: int) -> str:
        return f"{self.slot(partition)}:committed:{committer}"  # the last batch number a worker committed for the partition

    def metrics_total(self, partition: int) -> str:
        return f"{self.slot(partition)}:metrics:total"  # hash of the partition's online counters since the start

    def metrics_bucket(self, bucket: int, partition: int) -> str:
        return f"{self.slot(partition)}:metrics:b:{bucket}"

    def learning_feed(self, partition: int) -> str:
        return f"{self.slot(partition)}:learned"  # stream of what committed batches teach the item neighbours

    def model(self, version: str) -> str:
        return f"{self.tag}:model:{version}"  # hash: weights, meta

    def lag_bucket(self, bucket: int) -> str:
        return f"{self.tag}:metrics:lag:{bucket}"  # hash: worker id -> its consumer lag last reported in the bucket

    def worker(self, worker: str) -> str:
        return f"{self.tag}:worker:{worker}"  # JSON heartbeat, expires unless renewed


def partition_of(session_id: str, partitions: int) -> int:
    """The clicks topic's partition of a session: what Kafka's default partitioner makes of its key."""
    return (murmur2(session_id.encode()) & 0x7FFFFFFF) % partitions
