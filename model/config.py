"""Configuration of a model (network, training, serving rules) and its named presets.

No torch here: commands that only need names and defaults stay light.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from sessionrec.model.errors import DataError

LOSS_NAMES = ("cross-entropy", "bpr", "top1", "bpr-max", "top1-max")  # each implemented in model.losses.LOSSES
OPTIMIZERS = ("adagrad", "adam")
VOCABS = ("train", "train+test")
PROTOCOLS = ("seed", "official")  # offline evaluation protocols, defined in model.protocol


@dataclass(frozen=True)
class NetworkConfig:
    """The network's shape; the number of items comes from the data it is trained on."""

    layers: list[int] = field(default_factory=lambda: [100])  # GRU layer sizes, input side first
    embedding: int = 0  # 0: the input embedding is the output embedding (shared); >0: a separate one of this size
    dropout_embed: float = 0.0
    dropout_hidden: float = 0.0

    def problems(self) -> list[str]:
        if not self.layers or min(self.layers) < 1:
            return ["layers must be positive sizes, e.g. 100 or 100,100"]
        return []


@dataclass(frozen=True)
class ServingConfig:
    """How the network's scores become a list: offline evaluation and the stream both apply it.

    It travels in the checkpoint, so a worker serves a model by the rules it was
    chosen with; worker settings may override them (documented there).
    """

    history_weight: float = 0.0  # blend of GRU4Rec's next-click distribution with the session's own history; 0 = GRU4Rec alone
    history_decay: float = 0.5  # weight of a history click per step of age
    history_len: int = 50  # clicks of a session kept for the blend and for recomputing state
    session_timeout: float = 1800.0  # event-time seconds of pause that start a fresh state in the stream; 0 = never
    neighbours: int = 0  # item neighbours kept per item (model.neighbours) and fused into the list (model.fused); 0 = none
    exclude_history: bool = False  # never recommend an item the session already has (data that never repeats, e.g. ratings)

    def problems(self) -> list[str]:
        problems = []
        if self.neighbours < 0:
            problems.append("neighbours must be >= 0")
        if not 0.0 <= self.history_weight <= 1.0 or not 0.0 < self.history_decay <= 1.0:
            problems.append("history_weight must lie in [0, 1] and history_decay in (0, 1]")
        if self.history_len < 1 or self.session_timeout < 0:
            problems.append("history_len >= 1 and session_timeout >= 0 are required")
        return problems


@dataclass(frozen=True)
class TrainConfig:
    """Everything a checkpoint was made with: the network, how it was trained, how it is served."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
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
    serving: ServingConfig = field(default_factory=ServingConfig)

    def __post_init__(self) -> None:
        problems = self.network.problems() + self.serving.problems()
        if self.loss not in LOSS_NAMES:
            problems.append(f"loss must be one of {', '.join(LOSS_NAMES)}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if self.vocab not in VOCABS:
            problems.append(f"vocab must be one of {', '.join(VOCABS)}")
        if self.batch_size < 1 or self.epochs < 0 or self.lr <= 0:
            problems.append("batch_size >= 1, epochs >= 0 and lr > 0 are required")
        if self.jitter < 0:
            problems.append("jitter must be >= 0")
        if problems:
            raise DataError("invalid configuration: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        return cls().updated(**values)

    def updated(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (None values ignored); network and serving keys may come flat or nested."""
        flat = {k: v for k, v in changes.items() if v is not None and k not in _PARTS}
        for part in _PARTS:
            nested = changes.get(part) or {}
            flat.update(asdict(nested) if is_dataclass(nested) else nested)
        parts = {part: {k: flat.pop(k) for k in list(flat) if k in _PARTS[part]} for part in _PARTS}
        unknown = sorted(set(flat) - {f.name for f in fields(self)})
        if unknown:
            raise DataError(f"unknown configuration key(s): {', '.join(unknown)}")
        return replace(self, **flat, **{part: replace(getattr(self, part), **values) for part, values in parts.items()})


_PARTS = {"network": {f.name for f in fields(NetworkConfig)}, "serving": {f.name for f in fields(ServingConfig)}}


PRESETS: dict[str, TrainConfig] = {
    # The course lab's model: separate embedding 64, one GRU layer of 64,
    # full-softmax cross-entropy, Adam 1e-3, batch 10, 10 epochs, vocabulary over train+test.
    "lab": TrainConfig(
        network=NetworkConfig(layers=[64], embedding=64), loss="cross-entropy", full_softmax=True, n_sample=0,
        optimizer="adam", lr=1e-3, batch_size=10, epochs=10, vocab="train+test",
    ),
    # The official GRU4Rec PyTorch defaults the reference figures were measured with.
    "official": TrainConfig(),
    # MovieLens users' rating sequences, chosen on the validation targets only (three ratings before
    # the last per user; see the README): sampled cross-entropy with uniform negatives and logQ
    # correction of the in-batch ones, shared embedding, strong hidden dropout; a user's earlier
    # movies are no negatives (nobody rates a movie twice, and the ranking excludes them), and each
    # epoch jitters the order of the ratings by up to 2.5 places, since a user rates batches of
    # movies at one sitting in no meaningful order. The jitter is what made 20 epochs pay off.
    # A user is one session, so the stream never times one out.
    "movielens": TrainConfig(
        network=NetworkConfig(layers=[300], embedding=0, dropout_embed=0.2, dropout_hidden=0.6),
        loss="cross-entropy", n_sample=1024, sample_alpha=0.0, logq=1.0, exclude_seen=True,
        optimizer="adagrad", lr=0.1, batch_size=64, epochs=20, jitter=2.5, serving=ServingConfig(session_timeout=0.0, exclude_history=True),
    ),
}
# The official network (trained identically, so all three make the same weights), its next-click
# distribution blended with the session's own history when served and evaluated (weight and decay
# chosen on the last 15% of training sessions, never on test; see the README): `blend`; and that
# blend fused with item neighbours learned from the training sessions and then from the stream
# (model.neighbours, model.fused; chosen by a prequential replay, see the README): `best`.
PRESETS["blend"] = PRESETS["official"].updated(history_weight=0.5, history_decay=0.8)
PRESETS["best"] = PRESETS["blend"].updated(neighbours=50)
ENSEMBLE_MEMBERS = 5  # MovieLens GRU4Rec networks averaged in `bench movielens`; chosen on validation (before the jitter)


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
        if not isinstance(values, dict):
            raise DataError(f"{path}: the configuration must be a JSON object of configuration keys")
        config = config.updated(**values)
    return config.updated(**overrides)
