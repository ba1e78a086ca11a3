"""Adagrad with momentum, the optimizer of the official GRU4Rec implementation.

torch.optim.Adagrad has no momentum and puts epsilon outside the square root;
this follows the official update: acc += g^2; v = mu * v - lr * g / sqrt(acc + eps); p += v.
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
            lr, momentum, eps = group["lr"], group["momentum"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["acc"] = torch.zeros_like(p)
                    if momentum > 0:
                        state["velocity"] = torch.zeros_like(p)
                acc = state["acc"].addcmul_(p.grad, p.grad)
                update = p.grad / (acc + eps).sqrt_()
                if momentum > 0:
                    update = state["velocity"].mul_(momentum).add_(update, alpha=-lr)
                    p.add_(update)
                else:
                    p.add_(update, alpha=-lr)
        return None
