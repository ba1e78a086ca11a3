"""Fine-tuning a trained model on new sessions, items it has not seen included."""

from __future__ import annotations

from sessionrec.model.config import TrainConfig
from sessionrec.model.evaluate import Report, rank_targets
from sessionrec.model.network import GRU4Rec
from sessionrec.model.scoring import GRU4RecScorer
from sessionrec.model.sessions import Sessions
from sessionrec.model.train import TrainLog, train


def fine_tune(net: GRU4Rec, config: TrainConfig, sessions: Sessions, n_items: int, epochs: int) -> tuple[GRU4Rec, TrainLog]:
    """Train a grown copy of ``net`` on ``sessions``; ``net`` itself is left as it was."""
    start = net.grow(n_items)
    return train(config.updated(epochs=epochs), sessions, n_items, net=start, progress=False)


def next_click_report(net: GRU4Rec, config: TrainConfig, sessions: Sessions, n_items: int) -> Report:
    scorer = GRU4RecScorer(net, config.serving)
    return rank_targets(scorer, sessions, n_items, history_len=config.serving.history_len).report()
