"""Adagrad with momentum, the optimizer of the official GRU4Rec implementation.

torch.optim.Adagrad has no momentum and puts epsilon outside the square root;
this follows the official update: acc += g^2; v = mu * v - lr * g / sqrt(acc + eps); p += v.
Sparse gradients (sampled output columns) update only the rows they touch,
which is what makes sampled training fast.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim import Optimizer


class AdagradM(Optimizer):
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 0.05, momentum: float = 0.0, eps: float = 1e-6) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - the Optimizer signature
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group["lr"], group["momentum"], group["eps"])
        return None

    def _update(self, p: torch.Tensor, lr: float, momentum: float, eps: float) -> None:
        state = self.state[p]
        if not state:
            state["acc"] = torch.zeros_like(p)
            if momentum > 0:
                state["velocity"] = torch.zeros_like(p)
        grad = p.grad
        if grad.is_sparse:
            grad = grad.coalesce()  # the update is non-linear in the gradient: one row, one entry
            rows, grad = grad.indices()[0], grad.values()
            acc = state["acc"].index_add_(0, rows, grad * grad)[rows]
        else:
            rows, acc = None, state["acc"].addcmul_(grad, grad)
        update = grad / (acc + eps).sqrt_()
        if momentum > 0:
            velocity = state["velocity"] if rows is None else state["velocity"][rows]
            update = velocity.mul_(momentum).add_(update, alpha=-lr)
            if rows is not None:
                state["velocity"].index_copy_(0, rows, update)
            lr = -1.0  # the velocity already carries the step
        if rows is None:
            p.add_(update, alpha=-lr)
        else:
            p.index_add_(0, rows, update, alpha=-lr)
