"""Adagrad with momentum, the optimizer of the official GRU4Rec implementation.

torch.optim.Adagrad has no momentum and puts epsilon outside the square root;
this follows the official update: acc += g^2; v = mu * v - lr * g / sqrt(acc + eps); p += v.
Sparse gradients (sampled output columns) update only the rows they touch,
which is what makes sampled training fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer


class AdagradM(Optimizer):
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 0.05, momentum: float = 0.0, eps: float = 1e-6) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, eps=eps))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            for p in params:
                if not self.state[p]:
                    self.state[p]["acc"] = torch.zeros_like(p)
                    if group["momentum"] > 0:
                        self.state[p]["velocity"] = torch.zeros_like(p)
            dense = [p for p in params if not p.grad.is_sparse]
            if dense:
                self._dense(dense, group["lr"], group["momentum"], group["eps"])
            for p in params:
                if p.grad.is_sparse:
                    self._sparse(p, group["lr"], group["momentum"], group["eps"])

    def _dense(self, params: list[torch.Tensor], lr: float, momentum: float, eps: float) -> None:
        """All dense parameters at once (foreach kernels): the per-tensor loop costs more than the math."""
        grads = [p.grad for p in params]
        accs = [self.state[p]["acc"] for p in params]
        torch._foreach_addcmul_(accs, grads, grads)
        scales = torch._foreach_add(accs, eps)  # noqa: SLF001 - torch names its foreach kernels so
        torch._foreach_rsqrt_(scales)  # 1 / sqrt(acc + eps): rsqrt and multiply cost less than sqrt and divide
        if momentum > 0:
            velocities = [self.state[p]["velocity"] for p in params]
            torch._foreach_mul_(velocities, momentum)
            torch._foreach_addcmul_(velocities, grads, scales, value=-lr)
            torch._foreach_add_(params, velocities)
        else:
            torch._foreach_addcmul_(params, grads, scales, value=-lr)

    def _sparse(self, p: torch.Tensor, lr: float, momentum: float, eps: float) -> None:
        """Only the rows the gradient touches (and their momentum) change.

        Rows are read with index_select and written with index_add_/index_copy_: on CPU
        advanced indexing (``t[rows]``) and index_add_ with ``alpha`` cost about twice as much.
        """
        state = self.state[p]
        grad = p.grad.coalesce()  # the update is non-linear in the gradient: one row, one entry
        rows, grad = grad.indices()[0], grad.values()
        state["acc"].index_add_(0, rows, grad * grad)
        update = state["acc"].index_select(0, rows).add_(eps).rsqrt_().mul_(grad)  # g / sqrt(acc + eps)
        if momentum > 0:
            update = state["velocity"].index_select(0, rows).mul_(momentum).add_(update, alpha=-lr)
            state["velocity"].index_copy_(0, rows, update)
        else:
            update.mul_(-lr)
        p.index_add_(0, rows, update)
