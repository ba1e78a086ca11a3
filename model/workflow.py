"""What the offline commands do, as library functions: train a checkpoint, evaluate one, make sure one exists."""

from __future__ import annotations

from pathlib import Path

from sessionrec.model import checkpoint
from sessionrec.model.config import PRESETS, TrainConfig
from sessionrec.model.evaluate import Report, served_report
from sessionrec.model.neighbours import learned_from
from sessionrec.model.protocol import Split, default_split_dir, evaluation_sessions, load_split, training_vocab
from sessionrec.model.report import console
from sessionrec.model.sessions import Sessions
from sessionrec.model.train import train


def train_checkpoint(config: TrainConfig, split: Split, *, progress: bool = True) -> tuple[checkpoint.Checkpoint, float]:
    """Train on the split's training file; returns the checkpoint and training events/s."""
    vocab = training_vocab(config.vocab, split)
    sessions = Sessions.from_frame(split.train, vocab.copy())
    net, log = train(config, sessions, len(vocab), progress=progress)
    data = {"train": str(split.train_path), "clicks": int(len(split.train)), "sessions": sessions.n_sessions,
            "targets": sessions.n_targets, "items": len(vocab), "epoch_loss": log.epoch_loss, "events_per_s": log.events_per_s}
    neighbours = learned_from(sessions.items, sessions.offsets, config.serving.neighbours) if config.serving.neighbours else None
    return checkpoint.Checkpoint(net=net, config=config, vocab=vocab, neighbours=neighbours, data=data), log.events_per_s


def evaluate_checkpoint(ckpt: checkpoint.Checkpoint, split: Split, protocol: str, *, session_timeout: float = 0.0,
                        progress: bool = False) -> Report:
    """The protocol's next-click evaluation of ``ckpt`` as served; ``session_timeout`` > 0 resets sessions as the stream does."""
    sessions, n_items = evaluation_sessions(protocol, ckpt.vocab, split, session_timeout)
    return served_report(ckpt.net, ckpt.config.serving, sessions, n_items, neighbours=ckpt.neighbours, progress=progress)


def ensure_checkpoint(folder: str | Path) -> None:
    """Train the best configuration into ``folder`` unless a checkpoint is there already."""
    if (Path(folder) / checkpoint.META).is_file():
        return
    console.print(f"No model in {folder}: training GRU4Rec (preset best) on {default_split_dir()} first.")
    ckpt, _ = train_checkpoint(PRESETS["best"], load_split())
    checkpoint.save(ckpt, folder)
