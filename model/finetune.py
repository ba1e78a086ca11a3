"""Fine-tuning a trained model on new sessions, items it has not seen included."""

from __future__ import annotations

import copy


from sessionrec.model.config import TrainConfig
from sessionrec.model.evaluate import Report, rank_targets
from sessionrec.model.network import GRU4Rec, NetworkConfig
from sessionrec.model.scoring import GRU4RecScorer
from sessionrec.model.sessions import Sessions
from sessionrec.model.train import TrainLog, train


def grow(net: GRU4Rec, n_items: int) -> GRU4Rec:
    """A copy of ``net`` that knows ``n_items`` items: the old ones keep their weights.

    New items start as the unknown item does (all-zero rows) with the lowest
    bias of the old ones: the session reads them as before, and they stay low
    in the ranking until training reaches them, rather than scoring at random.
    """
    old = net.n_items
    if n_items < old:
        raise ValueError(f"cannot shrink a model of {old} items to {n_items}")
    bigger = GRU4Rec(NetworkConfig(**{**net.config.to_dict(), "n_items": n_items}))
    state = bigger.state_dict()
    for name, value in net.state_dict().items():
        if name.startswith("item_"):  # item tables: rows 0..old-1 are items, the last row is the unknown item
            state[name].zero_()
            state[name][:old] = value[:old]
        else:
            state[name] = value.clone()
    state["item_bias.weight"][old:n_items] = net.item_bias.weight[:old].min()
    bigger.load_state_dict(state)
    return bigger.eval()


def fine_tune(net: GRU4Rec, config: TrainConfig, sessions: Sessions, n_items: int, epochs: int) -> tuple[GRU4Rec, TrainLog]:
    """Train a grown copy of ``net`` on ``sessions``; ``net`` itself is left as it was."""
    start = grow(copy.deepcopy(net), n_items)
    return train(config.updated(epochs=epochs), sessions, n_items, net=start, progress=False)


def next_click_report(net: GRU4Rec, config: TrainConfig, sessions: Sessions, n_items: int) -> Report:
    scorer = GRU4RecScorer(net, config.history_weight, config.history_decay)
    return rank_targets(scorer, sessions, n_items, history_len=config.history_len).report()
