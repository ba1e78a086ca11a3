"""`sessionrec bench model`: our best GRU4Rec and every baseline, both protocols, one table.

GRU4Rec is trained once in the official configuration (cross-entropy, shared
embedding, 100 units, batch 32, 2048 samples, 10 epochs) on one torch thread:
that run gives the training speed. The best preset is that network served
with the session-history blend, so it reuses the same weights unless its
training configuration differs.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from sessionrec.model.baselines import ItemKNN, MostPopular, RepeatHistory
from sessionrec.model.config import PRESETS, TrainConfig
from sessionrec.model.evaluate import Report, rank_targets
from sessionrec.model.protocol import PROTOCOLS, Split, evaluation_sessions, training_vocab
from sessionrec.model.scoring import GRU4RecScorer, Scorer
from sessionrec.model.sessions import Sessions
from sessionrec.model.train import train

SERVING_FIELDS = {"history_weight", "history_decay", "history_len"}


def same_training(a: TrainConfig, b: TrainConfig) -> bool:
    return all(getattr(a, f.name) == getattr(b, f.name) for f in fields(TrainConfig) if f.name not in SERVING_FIELDS)


def run_model_bench(split: Split, *, progress: bool = True) -> tuple[list[tuple[str, str, Report]], list[dict[str, Any]]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the speed run is defined on one thread
    try:
        official, best = PRESETS["official"], PRESETS["best"]
        vocab = training_vocab(official.vocab, split)
        train_sessions = Sessions.from_frame(split.train, vocab.copy())
        net, log = train(official, train_sessions, len(vocab), progress=progress)
        best_net = net if same_training(official, best) else train(best, train_sessions, len(vocab), progress=progress)[0]
    finally:
        torch.set_num_threads(threads)
    scorers: dict[str, tuple[Scorer, int | None]] = {
        "gru4rec best (history blend)": (GRU4RecScorer(best_net, best.history_weight, best.history_decay), best.history_len),
        "gru4rec official config": (GRU4RecScorer(net), official.history_len),
        "most popular": (MostPopular(train_sessions, len(vocab)), None),
        "repeat, then history": (RepeatHistory(), None),
        "item-kNN": (ItemKNN(train_sessions, len(vocab)), None),
    }
    rows, records = [], []
    for protocol in PROTOCOLS:
        sessions, n_items = evaluation_sessions(protocol, vocab, split)
        for name, (scorer, history_len) in scorers.items():
            report = rank_targets(scorer, sessions, n_items, history_len=history_len or official.history_len, progress=progress).report()
            rows.append((name, protocol, report))
            record = {"model": name, "protocol": protocol, **report.to_dict()}
            if name.startswith("gru4rec"):
                record["train_events_per_s"] = log.events_per_s
            records.append(record)
    return rows, records


def write_json(records: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=2))
