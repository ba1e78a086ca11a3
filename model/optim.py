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

EPS = 1e-6


def update_dense(params: list[torch.Tensor], grads: list[torch.Tensor], accs: list[torch.Tensor], velocities: list[torch.Tensor] | None,
                 lr: float, momentum: float, eps: float = EPS) -> None:
    """The official update of whole tensors at once (foreach kernels): the per-tensor loop costs more than the math.

    ``velocities`` is None without momentum.
    """
    torch._foreach_addcmul_(accs, grads, grads)
    scales = torch._foreach_add(accs, eps)  # noqa: SLF001 - torch names its foreach kernels so
    torch._foreach_sqrt_(scales)  # sqrt and divide: torch's rsqrt on CPU costs three times its sqrt
    if momentum > 0:
        torch._foreach_mul_(velocities, momentum)
        torch._foreach_addcdiv_(velocities, grads, scales, value=-lr)
        torch._foreach_add_(params, velocities)
    else:
        torch._foreach_addcdiv_(params, grads, scales, value=-lr)


def update_rows(param: torch.Tensor, rows: torch.Tensor, grad: torch.Tensor, acc: torch.Tensor, velocity: torch.Tensor | None,
                lr: float, momentum: float, eps: float = EPS) -> None:
    """The official update of the distinct ``rows`` only (their gradient ``grad``); the others, and their momentum, stay.

    Rows are read with index_select and written with index_add_/index_copy_: on CPU
    advanced indexing (``t[rows]``) and index_add_ with ``alpha`` cost about twice as much.
    """
    acc.index_add_(0, rows, grad * grad)
    update = grad / acc.index_select(0, rows).add_(eps).sqrt_().mul_(-1 / lr)  # -lr g / sqrt(acc + eps)
    if momentum > 0:
        update = velocity.index_select(0, rows).mul_(momentum).add_(update)
        velocity.index_copy_(0, rows, update)
    param.index_add_(0, rows, update)


class AdagradM(Optimizer):
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 0.05, momentum: float = 0.0, eps: float = EPS) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, eps=eps))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:
        for group in self.param_groups:
            lr, momentum, eps = group["lr"], group["momentum"], group["eps"]
            params = [p for p in group["params"] if p.grad is not None]
            for p in params:
                if not self.state[p]:
                    self.state[p]["acc"] = torch.zeros_like(p)
                    if momentum > 0:
                        self.state[p]["velocity"] = torch.zeros_like(p)
            dense = [p for p in params if not p.grad.is_sparse]
            if dense:
                velocities = [self.state[p]["velocity"] for p in dense] if momentum > 0 else None
                update_dense(dense, [p.grad for p in dense], [self.state[p]["acc"] for p in dense], velocities, lr, momentum, eps)
            for p in params:
                if p.grad.is_sparse:
                    grad = p.grad.coalesce()  # the update is non-linear in the gradient: one row, one entry
                    update_rows(p, grad.indices()[0], grad.values(), self.state[p]["acc"], self.state[p].get("velocity"), lr, momentum, eps)
