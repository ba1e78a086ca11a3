"""Next-click scorers: what offline evaluation and the live stream both call.

A scorer keeps a fixed-width state per session (GRU4Rec's hidden vector; empty
for the baselines), advances it by one click, and scores every item of the
vocabulary given the session's recent history. Offline evaluation and the
stream drive the same three methods, so both compute the same ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import torch
from torch.nn import functional as F

from sessionrec.model.network import GRU4Rec

PAD = -1  # empty history slot


class Scorer(Protocol):
    state_size: int

    def advance(self, state: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The state after reading one more click per row."""

    def scores(self, state: torch.Tensor, history: torch.Tensor, n_items: int) -> torch.Tensor:
        """[B, n_items] scores, higher is better; ``history`` is [B, L], most recent click last."""


def history_weights(history: torch.Tensor, decay: float) -> torch.Tensor:
    """[B, L] weight of each history slot: ``decay`` per step of age, normalised per row."""
    length = history.size(1)
    age = torch.arange(length - 1, -1, -1, device=history.device, dtype=torch.float32)
    weights = (decay**age).expand(history.size(0), -1) * (history != PAD)
    return weights / weights.sum(1, keepdim=True).clamp(min=1e-12)


def history_scores(history: torch.Tensor, n_items: int, decay: float, reduce: Literal["sum", "amax"] = "sum") -> torch.Tensor:
    """Recency weights of the items in each row's history, over the whole vocabulary.

    ``sum`` adds up repeated clicks on an item; ``amax`` keeps only its most recent
    one, which orders items strictly by last click when ``decay`` < 1.
    """
    out = torch.zeros(history.size(0), n_items, device=history.device)
    out.scatter_reduce_(1, history.clamp(min=0), history_weights(history, decay), reduce=reduce)
    return out / out.sum(1, keepdim=True).clamp(min=1e-12)


def clicked(columns: torch.Tensor, present: torch.Tensor, width: int) -> torch.Tensor:
    """[B, width]: True at every column a ``present`` slot of ``columns`` ([B, L]) points at."""
    counts = torch.zeros(columns.size(0), width, dtype=torch.int32, device=columns.device)
    return counts.scatter_add_(1, columns, present.int()) > 0


def push_history(history: torch.Tensor, items: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """Append one click per row, dropping the oldest; rows where a session ``start`` forget their past first.

    A long pause resets a session's network state, not its history: the items
    clicked before the pause are still the session's own (DESIGN rule 3 is
    about the state).
    """
    history = history.masked_fill(start[:, None], PAD)
    return torch.cat([history[:, 1:], items[:, None]], dim=1)


class GRU4RecScorer:
    """GRU4Rec's next-click distribution, optionally blended with the session's history.

    With ``history_weight`` w > 0 the score is (1 - w) * softmax(GRU4Rec) + w *
    recency-weighted history: a repeat-aware prior that also covers items the
    network has not learned yet. With ``exclude_history`` the session's own
    items are never recommended (for data that never repeats an item).
    """

    def __init__(self, net: GRU4Rec, history_weight: float = 0.0, history_decay: float = 0.5, exclude_history: bool = False) -> None:
        self.net = net.eval()
        self.history_weight = history_weight
        self.history_decay = history_decay
        self.exclude_history = exclude_history
        self.state_size = net.hidden_size
        self._top = net.config.layers[-1]
        self._wide: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def advance(self, state: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.net.step(items, state)[1]

    @torch.no_grad()
    def scores(self, state: torch.Tensor, history: torch.Tensor, n_items: int) -> torch.Tensor:
        logits = self.net.score(state[:, -self._top :])
        unknown = n_items - logits.size(1)
        if self.history_weight == 0.0:
            out = F.pad(logits, (0, unknown), value=float("-inf"))
        else:
            blend = F.pad(torch.softmax(logits, dim=1) * (1.0 - self.history_weight), (0, unknown))
            out = blend + self.history_weight * history_scores(history, n_items, self.history_decay)
        if self.exclude_history:
            out.masked_fill_(clicked(history.clamp(min=0), history != PAD, n_items), float("-inf"))
        return out

    @torch.no_grad()
    def topk(self, state: torch.Tensor, history: torch.Tensor, k: int, now: object = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The k best items of each row, best first, as ``scores`` would rank them (``now`` is not needed here).

        Scores only what can score above zero: the items the network knows plus
        the row's own history, whose items it may not know. Each unknown history
        item gets a column of its own (at its first slot), so the work does not
        grow with the live vocabulary.
        """
        n_known = self.net.n_items
        output = state[:, -self._top :]
        present = history != PAD
        if self.history_weight == 0.0:
            logits = self.net.score(output)
            if self.exclude_history:
                logits.masked_fill_(clicked(history.clamp(min=0, max=n_known - 1), present & (history < n_known), n_known), float("-inf"))
            values, items = logits.topk(min(k, n_known), dim=1)
            return items, values
        length = history.size(1)
        first_slot = (history[:, :, None] == history[:, None, :]).int().argmax(dim=2)
        columns = torch.where(history >= n_known, n_known + first_slot, history).clamp(min=0)  # PAD slots weigh nothing
        blend = torch.softmax(F.linear(output, *self._wide_output(length, output.device)), dim=1).mul_(1.0 - self.history_weight)
        blend.scatter_add_(1, columns, history_weights(history, self.history_decay).mul_(self.history_weight))
        if self.exclude_history:
            blend.masked_fill_(clicked(columns, present, blend.size(1)), float("-inf"))
        values, best = blend.topk(min(k, n_known), dim=1)
        slots = (best - n_known).clamp(min=0, max=length - 1)
        return torch.where(best >= n_known, history.gather(1, slots), best), values

    def _wide_output(self, extra: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The output layer with ``extra`` columns that score -inf: softmax gives them 0, with no copy."""
        if extra not in self._wide:
            n, weight, bias = self.net.n_items, self.net.item_out.weight, self.net.item_bias.weight[:, 0]
            self._wide[extra] = (
                torch.cat([weight[:n], weight.new_zeros(extra, weight.size(1))]).to(device),
                torch.cat([bias[:n], bias.new_full((extra,), float("-inf"))]).to(device),
            )
        return self._wide[extra]


class EnsembleScorer:
    """Several scorers read the same clicks; the score is the mean of their log-softmax.

    Networks trained from different seeds err differently on a small data set,
    and averaging their log-probabilities cancels much of that seed noise. The
    state is the members' states side by side.
    """

    def __init__(self, members: Sequence[Scorer]) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = list(members)
        self._sizes = [member.state_size for member in self.members]
        self.state_size = sum(self._sizes)

    def advance(self, state: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        parts = state.split(self._sizes, dim=1)
        return torch.cat([member.advance(part, items) for member, part in zip(self.members, parts)], dim=1)

    def scores(self, state: torch.Tensor, history: torch.Tensor, n_items: int) -> torch.Tensor:
        parts = state.split(self._sizes, dim=1)
        total = sum(member.scores(part, history, n_items).log_softmax(dim=1) for member, part in zip(self.members, parts))
        return total / len(self.members)
