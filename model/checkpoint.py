"""Checkpoints: weights as safetensors (never pickle) plus JSON metadata.

A checkpoint is a folder: ``model.safetensors``, ``vocab.json`` (raw item ids
in index order) and ``meta.json`` (config, vocabulary size, training data
summary, evaluation metrics, version and parent version). The version is a
hash of the weights, so the same weights always carry the same name. A model
served with item neighbours keeps the neighbours learned in training beside
the network's tensors (``neighbours.*``): they seed the stream's table.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from sessionrec.model.config import TrainConfig
from sessionrec.model.errors import DataError
from sessionrec.model.neighbours import NeighbourRules, NeighbourTable
from sessionrec.model.network import GRU4Rec
from sessionrec.model.vocab import Vocabulary

WEIGHTS, VOCAB, META = "model.safetensors", "vocab.json", "meta.json"


@dataclass
class Checkpoint:
    net: GRU4Rec
    config: TrainConfig
    vocab: Vocabulary  # at least the net's items; indices beyond them are items it has not learned
    neighbours: NeighbourTable | None = None  # learned from the training sessions, when the serving rules use them
    version: str = ""
    parent: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # what it was trained on
    metrics: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def weights(self) -> bytes:
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.net.state_dict().items()}
        if self.neighbours is not None:
            tensors.update(self.neighbours.tensors())
        return save_tensors(tensors)

    def meta(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "parent": self.parent,
            "created": self.created,
            "n_items": self.net.n_items,
            "vocab_size": len(self.vocab),
            "config": self.config.to_dict(),
            "data": self.data,
            "metrics": self.metrics,
        }


def weights_version(blob: bytes) -> str:
    return "v" + hashlib.sha256(blob).hexdigest()[:12]


def to_bytes(ckpt: Checkpoint) -> tuple[bytes, dict[str, Any]]:
    """Weights and metadata, versioned; for files here and for the Redis registry."""
    blob = ckpt.weights()
    ckpt.version = weights_version(blob)
    return blob, ckpt.meta()


def network_from_bytes(blob: bytes, meta: dict[str, Any]) -> tuple[GRU4Rec, TrainConfig, NeighbourTable | None]:
    """The network, its configuration and its training neighbours; weights or metadata that do not fit are a DataError."""
    try:
        config = TrainConfig.from_dict(meta["config"])
        net = GRU4Rec(config.network, int(meta["n_items"]))
        tensors = load_tensors(blob)
        net.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("neighbours.")})
        neighbours = None
        if config.serving.neighbours:
            neighbours = NeighbourTable.from_tensors(tensors, NeighbourRules(width=config.serving.neighbours))
    except (KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as exc:
        raise DataError(f"weights and metadata of model {meta.get('version', '?')} do not fit: {str(exc).splitlines()[0]}") from None
    return net.eval(), config, neighbours


def from_bytes(blob: bytes, meta: dict[str, Any], vocab: list[str]) -> Checkpoint:
    net, config, neighbours = network_from_bytes(blob, meta)
    expected = meta.get("vocab_size", len(vocab))
    if len(vocab) != expected or len(vocab) < net.n_items:
        raise DataError(f"the vocabulary holds {len(vocab):,} items but the metadata says {expected:,} and the network knows {net.n_items:,}")
    return Checkpoint(
        net=net, config=config, vocab=Vocabulary(vocab), neighbours=neighbours, version=meta["version"], parent=meta.get("parent"),
        data=meta.get("data", {}), metrics=meta.get("metrics", {}), created=meta.get("created", 0.0),
    )


def save(ckpt: Checkpoint, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    blob, meta = to_bytes(ckpt)
    (folder / WEIGHTS).write_bytes(blob)
    (folder / VOCAB).write_text(json.dumps(ckpt.vocab.items))
    (folder / META).write_text(json.dumps(meta, indent=2))
    return folder


def load(folder: str | Path) -> Checkpoint:
    folder = Path(folder)
    paths = [folder / name for name in (WEIGHTS, VOCAB, META)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{folder}: not a checkpoint (missing {', '.join(missing)}); train one with `sessionrec train`")
    try:
        meta, vocab = json.loads(paths[2].read_text()), json.loads(paths[1].read_text())
        if not isinstance(meta, dict) or not isinstance(vocab, list):
            raise ValueError(f"{META} must hold an object and {VOCAB} a list")
        return from_bytes(paths[0].read_bytes(), meta, [str(item) for item in vocab])
    except ValueError as exc:  # DataError is one
        raise DataError(f"{folder}: damaged checkpoint ({exc})") from None
