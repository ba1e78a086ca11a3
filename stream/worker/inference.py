"""The serving model on its device: advance session states and recommend, a micro-batch at a time."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sessionrec.model.checkpoint import network_from_bytes
from sessionrec.model.fused import served_scorer
from sessionrec.model.neighbours import NeighbourTable
from sessionrec.model.scoring import PAD
from sessionrec.stream.settings import SettingsError


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when present), ``cpu`` or ``cuda[:N]``; anything else, or CUDA without a GPU, is a SettingsError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SettingsError(f"SESSIONREC_DEVICE={name!r} is not a device: use auto, cpu or cuda[:N]") from None
    if device.type not in ("cpu", "cuda"):
        raise SettingsError(f"SESSIONREC_DEVICE={name!r}: only auto, cpu and cuda[:N] are supported")
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise SettingsError(f"SESSIONREC_DEVICE={name!r} but this machine has no such CUDA device; use auto or cpu")
    return device


def history_matrix(histories: list[np.ndarray], length: int) -> np.ndarray:
    """Right-aligned [B, length] item indices, PAD on the left: the scorer's history layout."""
    out = np.full((len(histories), length), PAD, dtype=np.int32)
    for row, items in enumerate(histories):
        if len(items):
            tail = items[-length:]
            out[row, length - len(tail) :] = tail
    return out


class Engine:
    """One model version, ready to serve: its network on the device and the serving rules it was chosen with.

    A model served with item neighbours reads them from ``neighbours``, the
    worker's live table (which outlives model versions), or, without one, from
    the table the model was trained with.
    """

    def __init__(self, blob: bytes, meta: dict[str, Any], device: torch.device, top_k: int, neighbours: NeighbourTable | None = None) -> None:
        net, config, trained = network_from_bytes(blob, meta)
        self.serving = config.serving
        self.version: str = meta["version"]
        self.device = device
        self.top_k = top_k
        self.n_known = net.n_items
        self.hidden_size = net.hidden_size
        self.neighbours = (neighbours if neighbours is not None else trained) if self.serving.neighbours else None
        self.scorer = served_scorer(net.to(device), self.serving, self.neighbours, depth=top_k)

    @torch.no_grad()
    def step(self, hidden: np.ndarray, items: np.ndarray, history: np.ndarray, now: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Read one click per row (``history`` already ends with it, ``now`` its event time); the new states and top-k lists."""
        state = self.scorer.advance(self._tensor(hidden), self._tensor(items))
        recs, _ = self.scorer.topk(state, self._tensor(history), self.top_k, now)
        return state.cpu().numpy(), recs.cpu().numpy()

    @torch.no_grad()
    def rebuild(self, history: np.ndarray) -> np.ndarray:
        """States recomputed from each row's recent clicks (right-aligned, PAD-padded): DESIGN rule 4."""
        return self._read(self._tensor(history)).cpu().numpy()

    @torch.no_grad()
    def recommend(self, history: np.ndarray, now: np.ndarray | None = None) -> np.ndarray:
        """Top-k lists for sessions known only by their clicks (right-aligned, PAD-padded), each read from a fresh state.

        For a session's clicks since its state last started fresh this is the
        list the stream made after the last of them (``now``: its event time).
        """
        items = self._tensor(history)
        recs, _ = self.scorer.topk(self._read(items), items, self.top_k, now)
        return recs.cpu().numpy()

    def _read(self, items: torch.Tensor) -> torch.Tensor:
        """The state after reading each row's clicks from a zero state; a PAD leaves a row as it is (all-PAD columns are skipped)."""
        state = torch.zeros(len(items), self.hidden_size, device=self.device)
        present = items != PAD
        for t in torch.nonzero(present.any(dim=0)).flatten().tolist():
            advanced = self.scorer.advance(state, items[:, t].clamp(min=0))
            state = advanced if bool(present[:, t].all()) else torch.where(present[:, t : t + 1], advanced, state)
        return state

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        return (tensor.long() if array.dtype == np.int32 else tensor).to(self.device)
