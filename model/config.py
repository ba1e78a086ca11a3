"""Training configuration and its named presets."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sessionrec.model.data import DataError
from sessionrec.model.losses import LOSSES

OPTIMIZERS = ("adagrad", "adam")
VOCABS = ("train", "train+test")


@dataclass(frozen=True)
class TrainConfig:
    # network
    layers: list[int] = field(default_factory=lambda: [100])
    embedding: int = 0  # 0: input embedding shared with the output layer; >0: separate, of this size
    dropout_embed: float = 0.0
    dropout_hidden: float = 0.0
    # objective
    loss: str = "cross-entropy"
    full_softmax: bool = False  # score every item instead of in-batch targets + samples
    n_sample: int = 2048  # extra negatives shared by the batch, drawn by popularity**sample_alpha
    sample_alpha: float = 0.5
    logq: float = 0.0  # weight of the log-popularity correction of cross-entropy
    exclude_seen: bool = False  # a row's earlier items are no negatives: for data that never repeats an item (MovieLens)
    bpreg: float = 1.0  # score regularisation of BPR-max
    elu: float = 0.5  # ELU(alpha) on the scores before a ranking loss; 0 = none
    # optimisation
    optimizer: str = "adagrad"  # Adagrad with momentum, as the official implementation; or adam
    lr: float = 0.05
    momentum: float = 0.0
    batch_size: int = 32
    epochs: int = 10
    seed: int = 42
    jitter: float = 0.0  # each epoch moves every click by up to this many places in its session (augmentation); 0 = none
    # data
    vocab: str = "train"  # item vocabulary: what a live system can know, or train+test as the course lab
    session_timeout: float = 0.0  # seconds; a longer pause starts a fresh state; 0 = never
    # serving: blend of GRU4Rec's next-click distribution with the session's own history
    history_weight: float = 0.0  # 0 = GRU4Rec alone
    history_decay: float = 0.5  # weight of a history click per step of age
    history_len: int = 50  # clicks of a session kept for the blend and for recomputing state

    def __post_init__(self) -> None:
        problems = []
        if self.loss not in LOSSES:
            problems.append(f"loss must be one of {', '.join(LOSSES)}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if self.vocab not in VOCABS:
            problems.append(f"vocab must be one of {', '.join(VOCABS)}")
        if not self.layers or min(self.layers) < 1:
            problems.append("layers must be positive sizes, e.g. 100 or 100,100")
        if self.batch_size < 1 or self.epochs < 0 or self.lr <= 0:
            problems.append("batch_size >= 1, epochs >= 0 and lr > 0 are required")
        if self.jitter < 0:
            problems.append("jitter must be >= 0")
        if not 0.0 <= self.history_weight <= 1.0 or not 0.0 < self.history_decay <= 1.0:
            problems.append("history_weight must lie in [0, 1] and history_decay in (0, 1]")
        if problems:
            raise DataError("invalid configuration: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DataError(f"unknown configuration key(s): {', '.join(unknown)}")
        return cls(**values)

    def updated(self, **changes: Any) -> TrainConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


PRESETS: dict[str, TrainConfig] = {
    # The course lab's model: separate embedding 64, one GRU layer of 64,
    # full-softmax cross-entropy, Adam 1e-3, batch 10, 10 epochs, vocabulary over train+test.
    "lab": TrainConfig(
        layers=[64], embedding=64, loss="cross-entropy", full_softmax=True, n_sample=0,
        optimizer="adam", lr=1e-3, batch_size=10, epochs=10, vocab="train+test",
    ),
    # The official GRU4Rec PyTorch defaults the reference figures were measured with.
    "official": TrainConfig(),
}
# Ours: the official network, its next-click distribution blended with the session's own history
# (weight and decay chosen on the last 15% of training sessions, never on test; see the README).
PRESETS["best"] = PRESETS["official"].updated(history_weight=0.5, history_decay=0.8)


def load_config(preset: str | None, path: str | Path | None, **overrides: Any) -> TrainConfig:
    """Preset, then a JSON file, then flags: each later source wins."""
    if preset is not None and preset not in PRESETS:
        raise DataError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    config = PRESETS[preset or "best"]
    if path is not None:
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: cannot read the configuration ({exc})") from None
        config = TrainConfig.from_dict({**config.to_dict(), **values})
    return config.updated(**overrides)
