"""GRU4Rec: a GRU over the clicks of a session that scores every item as the next click.

Hidasi et al., "Session-based Recommendations with Recurrent Neural Networks"
(arXiv 1511.06939) and "Recurrent Neural Networks with Top-k Gains for
Session-based Recommendations" (arXiv 1706.03847).

Items the model has not learned yet (index >= n_items, DESIGN rule 5) read as
one extra all-zero, never-trained input row: the session still advances by a
click, and such items are never scored.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from sessionrec.model.config import NetworkConfig


def _uniform_(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """Glorot-uniform over the logical matrix, as the official implementation."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.uniform_(-bound, bound)


class _GatherRows(torch.autograd.Function):
    """``weight.index_select(0, rows)`` for sorted distinct ``rows``, and of those the rows ``inputs`` (a shared embedding).

    The backward adds the inputs' gradient into the rows' own (autograd would zero-fill
    and add whole tables) and never trains the padding row. Sparse, it writes
    the rows' gradient to ``weight.grad`` itself, flagged coalesced: autograd's
    accumulation drops that flag, and the optimizer would then sort rows that are
    distinct already.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, weight: torch.Tensor, rows: torch.Tensor, inputs: torch.Tensor,
                sparse: bool, padding: int) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.save_for_backward(rows, inputs)
        ctx.weight, ctx.sparse, ctx.padding = weight, sparse, padding
        table = weight.index_select(0, rows)
        return table, table.index_select(0, inputs)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor, grad_inputs: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        rows, inputs = ctx.saved_tensors
        weight = ctx.weight
        if len(inputs):
            grad = grad.index_add(0, inputs, grad_inputs)
        if rows[-1] == ctx.padding:  # sorted: the padding row can only be last
            rows, grad = rows[:-1], grad[:-1]
        if not ctx.sparse:
            return weight.new_zeros(weight.shape).index_copy_(0, rows, grad), None, None, None, None
        rows_grad = torch.sparse_coo_tensor(rows[None], grad, weight.shape, is_coalesced=True, check_invariants=False)
        weight.grad = rows_grad if weight.grad is None else weight.grad + rows_grad
        return None, None, None, None, None


class GRU4Rec(nn.Module):
    def __init__(self, config: NetworkConfig, n_items: int) -> None:
        super().__init__()
        torch.set_flush_denormal(True)  # process-wide: denormal floats (softmax tails, tiny gradients) are ~20x slower on x86
        self.config = config
        self.n_items = n_items
        n, top = n_items, config.layers[-1]
        unknown = n  # the padding row that stands for any item the model does not know
        self.item_out = nn.Embedding(n + 1, top, padding_idx=unknown)
        self.item_bias = nn.Embedding(n + 1, 1, padding_idx=unknown)
        self.item_in = nn.Embedding(n + 1, config.embedding, padding_idx=unknown) if config.embedding else None
        sizes = [config.embedding or top, *config.layers]
        self.grus = nn.ModuleList(nn.GRUCell(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        n = self.n_items
        for emb in (self.item_out, self.item_in):
            if emb is not None:
                _uniform_(emb.weight[:n], n, emb.embedding_dim)
        nn.init.zeros_(self.item_bias.weight)
        for gru in self.grus:
            _uniform_(gru.weight_ih, gru.input_size, gru.hidden_size)
            _uniform_(gru.weight_hh, gru.hidden_size, gru.hidden_size)
            nn.init.zeros_(gru.bias_ih)
            nn.init.zeros_(gru.bias_hh)

    def sparse_gradients(self, enabled: bool) -> None:
        """Embedding gradients as sparse rows: cheaper when a step touches few of many items.

        The one-column bias stays dense: updating it whole costs less than the sparse bookkeeping.
        """
        for emb in (self.item_out, self.item_in):
            if emb is not None:
                emb.sparse = enabled

    @property
    def hidden_size(self) -> int:
        """Width of a session's state: all layers' hidden vectors side by side."""
        return sum(self.config.layers)

    def init_hidden(self, batch_size: int) -> torch.Tensor:
        return self.item_out.weight.new_zeros(batch_size, self.hidden_size)

    def step(self, items: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Read one click per row. Returns the top layer's output and the new state."""
        embed = self.item_in if self.item_in is not None else self.item_out
        return self._recur(embed(items.clamp(max=self.n_items)), hidden)  # unknown items read the zero row

    def _recur(self, x: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._dropout(x, self.config.dropout_embed)
        states = []
        for gru, h in zip(self.grus, hidden.split(self.config.layers, dim=1)):
            h = gru(x, h)
            states.append(h)
            x = self._dropout(h, self.config.dropout_hidden)
        return x, torch.cat(states, dim=1)

    def _dropout(self, x: torch.Tensor, p: float) -> torch.Tensor:
        return F.dropout(x, p, self.training) if p > 0 else x  # p = 0 still costs a copy in training mode

    def score(self, output: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of ``items`` (all known items when None) for each row's output."""
        if items is None:
            return F.linear(output, self.item_out.weight[: self.n_items], self.item_bias.weight[: self.n_items, 0])
        return output @ self.item_out(items).T + self.item_bias(items).T

    def touched_scores(self, items: torch.Tensor, hidden: torch.Tensor,
                       columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """A training step scored once per distinct output row it touches: (scores, rows, where, new state).

        ``rows`` are the sorted distinct items of ``columns`` (and, with a shared embedding, of
        ``items``: the input and output rows come from one gather, so the table gets one
        gradient row per item); ``where`` places each column among them. A row touched only
        as an input is scored too; the caller gives it no weight.
        """
        shared = self.item_in is None
        rows, where = torch.unique(torch.cat([items.clamp(max=self.n_items), columns]) if shared else columns, return_inverse=True)
        inputs = where[: len(items)] if shared else where[:0]
        table, x = _GatherRows.apply(self.item_out.weight, rows, inputs, self.item_out.sparse, self.n_items)
        if shared:  # unknown items read the zero padding row
            output, hidden = self._recur(x, hidden)
        else:
            output, hidden = self.step(items, hidden)
        scores = torch.addmm(self.item_bias.weight.index_select(0, rows).T, output, table.T)
        return scores, rows, where[len(where) - len(columns) :], hidden

    def forward(self, items: torch.Tensor, hidden: torch.Tensor, columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A training step: read one click per row and score the sampled ``columns``; equal to ``step`` then ``score``."""
        scores, _, where, hidden = self.touched_scores(items, hidden, columns)
        return scores.index_select(1, where), hidden

    def grow(self, n_items: int) -> GRU4Rec:
        """A copy that knows ``n_items`` items; the old ones keep their weights.

        New items start as the unknown item does (all-zero rows) with the lowest
        bias of the old ones: the session reads them as before, and they stay low
        in the ranking until training reaches them, rather than scoring at random.
        """
        old = self.n_items
        if n_items < old:
            raise ValueError(f"cannot shrink a model of {old} items to {n_items}")
        bigger = GRU4Rec(self.config, n_items)
        state = bigger.state_dict()
        for name, value in self.state_dict().items():
            if name.startswith("item_"):  # item tables: rows 0..old-1 are items, the last row is the unknown item
                state[name].zero_()
                state[name][:old] = value[:old]
            else:
                state[name] = value.clone()
        state["item_bias.weight"][old:n_items] = self.item_bias.weight[:old].min()
        bigger.load_state_dict(state)
        return bigger.eval()
