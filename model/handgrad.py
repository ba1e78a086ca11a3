"""The official configuration's training step with its gradients derived by hand.

Sampled cross-entropy over a shared embedding, trained with Adagrad: the same
maths as the autograd step (model.train.Objective, then AdagradM) to float
rounding, tested side by side, without what autograd costs around it: no
graph, no sparse gradient tensors, no optimizer machinery, each gradient made
once, in the layout its update reads, and the GRU cell's derivatives taken
from its outputs by torch's fused sigmoid/tanh backward kernels: a step is some
70 small ops, and on one thread their dispatch costs about as much as the
arithmetic. The training loop takes 0.68-0.71x the autograd loop's CPU time
(electronics clicks, one thread, alternated runs). Every other
configuration (another loss, a separate embedding, dropout, logQ, seen items,
Adam) trains through autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sessionrec.model.config import TrainConfig
from sessionrec.model.network import GRU4Rec
from sessionrec.model.optim import update_dense, update_rows
from sessionrec.model.sampling import PopularitySampler


@dataclass
class _Cell:
    """What one GRU layer's forward keeps for its backward."""

    x: torch.Tensor  # input
    h: torch.Tensor  # state before
    r: torch.Tensor  # reset gate
    z: torch.Tensor  # update gate
    n: torch.Tensor  # candidate state
    hn: torch.Tensor  # W_hn h + b_hn, which the reset gate scales
    h_n: torch.Tensor  # h - n, the update gate's gradient factor
    out: torch.Tensor  # state after


def _forward(gru: torch.nn.GRUCell, x: torch.Tensor, h: torch.Tensor) -> _Cell:
    """torch's GRUCell: r, z = sigmoid(.), n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h."""
    size = gru.hidden_size
    gi = torch.addmm(gru.bias_ih, x, gru.weight_ih.T)
    gh = torch.addmm(gru.bias_hh, h, gru.weight_hh.T)
    rz = gi[:, : 2 * size].add_(gh[:, : 2 * size]).sigmoid_()
    r, z, hn = rz[:, :size], rz[:, size:], gh[:, 2 * size :]
    n = torch.addcmul(gi[:, 2 * size :], r, hn).tanh_()
    h_n = h - n
    return _Cell(x, h, r, z, n, hn, h_n, torch.addcmul(n, z, h_n))


_sigmoid_backward = torch.ops.aten.sigmoid_backward  # g s (1 - s) from the output s, in one kernel
_tanh_backward = torch.ops.aten.tanh_backward  # g (1 - t^2) from the output t


def _backward(gru: torch.nn.GRUCell, cell: _Cell, d_out: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The gradient of the layer's input, and of its weight_ih, weight_hh, bias_ih, bias_hh (the state before is detached)."""
    d_z = _sigmoid_backward(d_out * cell.h_n, cell.z)
    d_n = _tanh_backward(d_out - d_out * cell.z, cell.n)
    d_r = _sigmoid_backward(d_n * cell.hn, cell.r)
    d_gi = torch.cat([d_r, d_z, d_n], dim=1)
    d_gh = torch.cat([d_r, d_z, d_n * cell.r], dim=1)
    grads = [d_gi.T @ cell.x, d_gh.T @ cell.h, d_gi.sum(0), d_gh.sum(0)]
    return d_gi @ gru.weight_ih, grads


class HandGradStep:
    """Reads one click per row, scores the targets and the shared samples, and updates the network in place."""

    def __init__(self, net: GRU4Rec, config: TrainConfig, sampler: PopularitySampler | None) -> None:
        self.net = net
        self.sampler = sampler
        self.lr, self.momentum = config.lr, config.momentum
        self.table = net.item_out.weight
        self.dense = [net.item_bias.weight, *(p for gru in net.grus for p in (gru.weight_ih, gru.weight_hh, gru.bias_ih, gru.bias_hh))]
        self.acc = [torch.zeros_like(p) for p in (self.table, *self.dense)]
        self.velocity = [torch.zeros_like(p) for p in (self.table, *self.dense)] if config.momentum > 0 else None

    @staticmethod
    def supports(config: TrainConfig) -> bool:
        net = config.network
        return (config.loss == "cross-entropy" and config.logq == 0 and not config.full_softmax and not config.exclude_seen
                and config.optimizer == "adagrad" and net.embedding == 0 and net.dropout_embed == 0 and net.dropout_hidden == 0)

    @torch.no_grad()
    def __call__(self, inputs: torch.Tensor, hidden: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's loss and the new hidden state."""
        net, batch = self.net, len(inputs)
        sample = self.sampler.draw() if self.sampler else targets[:0]
        # Each distinct item the step touches is one row of the table: inputs (unknown ones read the zero padding
        # row), targets and samples. A column drawn c times weighs c times in the softmax, so it is scored once
        # with log c added; a row's own item counts once, and a row touched only as an input (c = 0) not at all.
        # Counting over the catalogue finds them in sorted order in 0.6x the time of torch.unique's sort (36 against
        # 60 us for a step's 2,112 indices; the bias's dense update passes over the catalogue each step already).
        inputs, columns = inputs.clamp(max=net.n_items), torch.cat([targets, sample])
        count = torch.bincount(columns, minlength=net.n_items + 1)
        touched = count + torch.bincount(inputs, minlength=net.n_items + 1)
        rows = touched.nonzero().squeeze(1)
        position = touched.bool().cumsum(0).sub_(1)  # each touched item's place among rows
        at_input, at_column = position.index_select(0, inputs), position.index_select(0, columns)
        target = at_column[:batch, None]
        table = self.table.index_select(0, rows)
        x, cells = table.index_select(0, at_input), []
        for gru, h in zip(net.grus, hidden.split(net.config.layers, dim=1)):
            cells.append(_forward(gru, x, h))
            x = cells[-1].out
        log_count = count.index_select(0, rows).to(table.dtype).log_()
        scores = torch.addmm(self.dense[0][:, 0].index_select(0, rows).add_(log_count), x, table.T)
        scores.scatter_add_(1, target, -log_count.index_select(0, target[:, 0])[:, None])
        log_p = torch.log_softmax(scores, dim=1)
        loss = -log_p.gather(1, target).mean()

        d_scores = log_p.exp_().scatter_add_(1, target, torch.full((batch, 1), -1.0, dtype=table.dtype)).div_(batch)  # softmax - one-hot, per row
        d_table = d_scores.T @ x
        d_x = d_scores @ table
        grads = [torch.zeros_like(self.dense[0]).index_add_(0, rows, d_scores.sum(0)[:, None])]  # the bias, dense as in AdagradM
        for gru, cell in zip(reversed(net.grus), reversed(cells)):
            d_x, layer = _backward(gru, cell, d_x)
            grads[1:1] = layer  # layers in the parameters' order
        d_table.index_add_(0, at_input, d_x)
        if rows[-1] == net.n_items:  # sorted: the padding row can only be last, and it is never trained
            rows, d_table = rows[:-1], d_table[:-1]
        velocity = self.velocity or [None]
        update_rows(self.table, rows, d_table, self.acc[0], velocity[0], self.lr, self.momentum)
        update_dense(self.dense, grads, self.acc[1:], self.velocity[1:] if self.velocity else None, self.lr, self.momentum)
        return loss, torch.cat([cell.out for cell in cells], dim=1)
