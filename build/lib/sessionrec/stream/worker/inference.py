"""The serving model on its device: advance session states and recommend, a micro-batch at a time."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sessionrec.model.checkpoint import network_from_bytes
from sessionrec.model.scoring import PAD, GRU4RecScorer


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def history_matrix(histories: list[np.ndarray], length: int) -> np.ndarray:
    """Right-aligned [B, length] item indices, PAD on the left: the scorer's history layout."""
    out = np.full((len(histories), length), PAD, dtype=np.int32)
    for row, items in enumerate(histories):
        if len(items):
            tail = items[-length:]
            out[row, length - len(tail) :] = tail
    return out


class Engine:
    """One model version, ready to serve: its network on the device and the serving rules it was chosen with."""

    def __init__(self, blob: bytes, meta: dict[str, Any], device: torch.device, top_k: int) -> None:
        net, config = network_from_bytes(blob, meta)
        self.serving = config.serving
        self.version: str = meta["version"]
        self.device = device
        self.top_k = top_k
        self.n_known = net.n_items
        self.hidden_size = net.hidden_size
        self.scorer = GRU4RecScorer(net.to(device), self.serving.history_weight, self.serving.history_decay)

    @torch.no_grad()
    def step(self, hidden: np.ndarray, items: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Read one click per row (``history`` already ends with it); the new states and top-k lists."""
        state = self.scorer.advance(self._tensor(hidden), self._tensor(items))
        recs, _ = self.scorer.topk(state, self._tensor(history), self.top_k)
        return state.cpu().numpy(), recs.cpu().numpy()

    @torch.no_grad()
    def rebuild(self, history: np.ndarray) -> np.ndarray:
        """States recomputed from each row's recent clicks (right-aligned, PAD-padded): DESIGN rule 4."""
        items = self._tensor(history)
        state = torch.zeros(len(history), self.hidden_size, device=self.device)
        for t in range(items.size(1)):
            column = items[:, t]
            present = (column != PAD)[:, None]
            if present.any():
                state = torch.where(present, self.scorer.advance(state, column.clamp(min=0)), state)
        return state.cpu().numpy()

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        return (tensor.long() if array.dtype == np.int32 else tensor).to(self.device)
