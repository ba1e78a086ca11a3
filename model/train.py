"""Training GRU4Rec with session-parallel mini-batches."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from sessionrec.model.config import TrainConfig
from sessionrec.model.handgrad import HandGradStep
from sessionrec.model.losses import LOSSES, bpr_max
from sessionrec.model.network import GRU4Rec
from sessionrec.model.optim import AdagradM
from sessionrec.model.sampling import PopularitySampler
from sessionrec.model.sessions import Sessions, jitter_order, session_parallel


@dataclass
class TrainLog:
    epoch_loss: list[float] = field(default_factory=list)
    events: int = 0  # targets trained on, over all epochs
    seconds: float = 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class Objective:
    """Scores the columns a loss needs and applies it: sampled or full softmax."""

    def __init__(self, config: TrainConfig, counts: np.ndarray, generator: torch.Generator) -> None:
        self.config = config
        self.loss = LOSSES[config.loss]
        if config.loss == "bpr-max":
            self.loss = lambda s, p, n: bpr_max(s, p, n, reg=config.bpreg)
        self.sampler = None
        self.dedupe = config.loss == "cross-entropy" and config.logq == 0
        if not config.full_softmax and config.n_sample > 0:
            self.sampler = PopularitySampler(counts, config.sample_alpha, config.n_sample, generator)
        pop = torch.from_numpy(np.maximum(counts, 1).astype(np.float32))
        self.log_pop = pop.log()  # in-batch targets come from the data's own popularity
        self.log_sample_pop = config.sample_alpha * self.log_pop

    def __call__(self, net: GRU4Rec, inputs: torch.Tensor, hidden: torch.Tensor, targets: torch.Tensor,
                 seen: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of one step, and the new hidden state.

        ``seen`` ([B, items] bool) marks each row's items so far: they are not negatives.
        """
        if self.config.full_softmax:
            output, hidden = net.step(inputs, hidden)
            scores = net.score(output)
            positive = targets
            negative = torch.ones_like(scores, dtype=torch.bool).scatter_(1, targets[:, None], False)
            if seen is not None:
                negative &= ~seen
        else:
            sample = self.sampler.draw() if self.sampler else targets[:0]
            columns = torch.cat([targets, sample])
            if self.dedupe:
                # Cross-entropy over distinct columns: a column drawn c times weighs c times in the
                # softmax, so it is scored once with log c added; a row's own item counts once, and
                # a row touched only as an input (c = 0) not at all.
                scores, rows, where, hidden = net.touched_scores(inputs, hidden, columns)
                positive = where[: len(targets)]
                log_counts = torch.bincount(where, minlength=len(rows)).to(scores.dtype).log()
                offsets = log_counts.expand_as(scores).scatter(1, positive[:, None], 0.0)
                if seen is not None:
                    offsets = offsets.masked_fill(seen[:, rows].scatter_(1, positive[:, None], False), float("-inf"))
                return F.cross_entropy(scores + offsets, positive), hidden
            else:
                scores, hidden = net(inputs, hidden, columns)
                positive = torch.arange(len(targets))
                negative = columns[None, :] != targets[:, None]
                if seen is not None:
                    negative &= ~seen[:, columns]
            if self.config.logq > 0 and self.config.loss == "cross-entropy":
                log_q = torch.cat([self.log_pop[targets], self.log_sample_pop[sample]])
                scores = scores - self.config.logq * log_q
        if self.config.loss != "cross-entropy" and self.config.elu > 0:
            scores = F.elu(scores, self.config.elu)
        return self.loss(scores, positive, negative), hidden


def make_optimizer(config: TrainConfig, net: GRU4Rec) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(net.parameters(), lr=config.lr)
    return AdagradM(net.parameters(), lr=config.lr, momentum=config.momentum)


def train(config: TrainConfig, sessions: Sessions, n_items: int, *, net: GRU4Rec | None = None, progress: bool = True,
          label: str = "") -> tuple[GRU4Rec, TrainLog]:
    """Train (or, given ``net``, fine-tune) on ``sessions`` whose item indices are < ``n_items``.

    ``label`` prefixes the progress bar, to tell apart several networks trained in a row.
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = net if net is not None else GRU4Rec(config.network, n_items)
    net.train()
    net.sparse_gradients(config.optimizer == "adagrad" and not config.full_softmax)
    counts = np.bincount(sessions.items, minlength=n_items)[:n_items]
    objective = Objective(config, counts, generator)
    by_hand = HandGradStep(net, config, objective.sampler) if HandGradStep.supports(config) else None
    optimizer = make_optimizer(config, net) if by_hand is None else None
    log = TrainLog()
    start = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    for epoch in range(config.epochs):
        epoch_sessions = jitter_order(sessions, config.jitter, rng) if config.jitter > 0 else sessions
        total, counted = 0.0, 0
        bar = tqdm(total=sessions.n_targets, desc=f"{label}epoch {epoch + 1}/{config.epochs}", unit="ev", disable=not progress, leave=False)
        hidden = net.init_hidden(config.batch_size)
        seen = torch.zeros(config.batch_size, n_items, dtype=torch.bool) if config.exclude_seen else None
        for step in session_parallel(epoch_sessions, config.batch_size):
            if step.keep is not None:
                hidden = hidden[step.keep]
            hidden = hidden[: len(step.inputs)].detach().masked_fill(step.fresh[:, None], 0.0)
            if seen is not None:
                seen = seen[step.keep] if step.keep is not None else seen[: len(step.inputs)]
                seen[step.fresh] = False
                seen[torch.arange(len(step.inputs)), step.inputs] = True
            if by_hand is not None:
                loss, hidden = by_hand(step.inputs, hidden, step.targets)
            else:
                loss, hidden = objective(net, step.inputs, hidden, step.targets, seen)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            value = loss.item()
            if not np.isfinite(value):
                raise FloatingPointError(f"training diverged in epoch {epoch + 1} (loss {value}); lower the learning rate")
            total += value * len(step.inputs)
            counted += len(step.inputs)
            bar.update(len(step.inputs))
            if bar.n % 2048 < len(step.inputs):
                bar.set_postfix(loss=f"{total / counted:.4f}", refresh=False)
        bar.close()
        log.epoch_loss.append(total / max(counted, 1))
        log.events += counted
    log.seconds = time.perf_counter() - start
    net.sparse_gradients(False)
    net.eval()
    return net, log
