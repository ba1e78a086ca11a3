"""Every Redis key the project uses, under one configurable prefix."""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.vocab_index = f"{prefix}:vocab:index"  # hash raw item id -> dense index
        self.vocab_items = f"{prefix}:vocab:items"  # list dense index -> raw item id
        self.model_current = f"{prefix}:model:current"  # version string of the promoted model
        self.model_history = f"{prefix}:model:history"  # promoted versions, newest first
        self.metrics_total = f"{prefix}:metrics:total"  # hash of online counters since the start
        self.trainer_cycles = f"{prefix}:trainer:cycles"  # list of JSON cycle records, newest first
        self.learning_feed = f"{prefix}:learned"  # stream of what committed batches teach the item neighbours
        self.partition_marks = f"{prefix}:partitions:marks"  # hash partition -> "offset,timestamp,crc" of its last applied click
        self.incarnations = f"{prefix}:partitions:incarnations"  # hash partition -> how many times its log started over
        self.epoch = f"{prefix}:epoch"  # set once vocabulary and registry are seeded; gone if Redis lost its data

    def session(self, session_id: str) -> str:
        return f"{self.prefix}:s:{session_id}"

    def committed(self, committer: str) -> str:
        return f"{self.prefix}:committed:{committer}"  # the last batch number a worker committed

    def model(self, version: str) -> str:
        return f"{self.prefix}:model:{version}"  # hash: weights, meta

    def metrics_bucket(self, bucket: int) -> str:
        return f"{self.prefix}:metrics:b:{bucket}"
