"""Negative samples shared by a mini-batch, drawn by popularity ** alpha.

Drawing one sample per batch call is slow, so samples are drawn in large
blocks and handed out a batch at a time, as the official implementation does.
"""

from __future__ import annotations

import numpy as np
import torch


class PopularitySampler:
    def __init__(self, counts: np.ndarray, alpha: float, n_sample: int, generator: torch.Generator, block: int = 4_000_000) -> None:
        weights = torch.from_numpy(counts.astype(np.float64)) ** alpha
        self.probs = (weights / weights.sum()).float()
        self.n_sample = n_sample
        self.generator = generator
        self.batches_per_block = max(1, block // max(n_sample, 1))
        self._block = torch.empty(0, n_sample, dtype=torch.long)
        self._next = 0

    def draw(self) -> torch.Tensor:
        if self._next >= len(self._block):
            flat = torch.multinomial(self.probs, self.batches_per_block * self.n_sample, replacement=True, generator=self.generator)
            self._block = flat.view(self.batches_per_block, self.n_sample)
            self._next = 0
        sample = self._block[self._next]
        self._next += 1
        return sample
