"""Every Redis key the project uses, under one configurable prefix."""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.vocab_index = f"{prefix}:vocab:index"  # hash raw item id -> dense index
        self.vocab_items = f"{prefix}:vocab:items"  # list dense index -> raw item id
        self.model_current = f"{prefix}:model:current"  # version string of the promoted model
        self.model_history = f"{prefix}:model:history"  # kept versions, in the order they last became current, newest first
        self.model_pin = f"{prefix}:model:pin"  # the version the pointer is held at, if any
        self.model_events = f"{prefix}:model:events"  # list of JSON records of the pointer's moves, newest first
        self.metrics_total = f"{prefix}:metrics:total"  # hash of online counters since the start
        self.trainer_cycles = f"{prefix}:trainer:cycles"  # list of JSON cycle records, newest first
        self.learning_feed = f"{prefix}:learned"  # stream of what committed batches teach the item neighbours
        self.partition_marks = f"{prefix}:partitions:marks"  # hash partition -> "offset,timestamp,crc" of its last applied click
        self.incarnations = f"{prefix}:partitions:incarnations"  # hash partition -> how many times its log started over
        self.epoch = f"{prefix}:epoch"  # set once vocabulary and registry are seeded; gone if Redis lost its data
        self.workers = f"{prefix}:workers"  # sorted set: worker id -> time of its last heartbeat

    def session(self, session_id: str) -> str:
        return f"{self.prefix}:s:{session_id}"

    def committed(self, committer: str) -> str:
        return f"{self.prefix}:committed:{committer}"  # the last batch number a worker committed

    def model(self, version: str) -> str:
        return f"{self.prefix}:model:{version}"  # hash: weights, meta

    def metrics_bucket(self, bucket: int) -> str:
        return f"{self.prefix}:metrics:b:{bucket}"

    def lag_bucket(self, bucket: int) -> str:
        return f"{self.prefix}:metrics:lag:{bucket}"  # hash: worker id -> its consumer lag last reported in the bucket

    def worker(self, worker: str) -> str:
        return f"{self.prefix}:worker:{worker}"  # JSON heartbeat, expires unless renewed
