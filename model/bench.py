"""The benches: `sessionrec bench model` (GRU4Rec and every baseline, both protocols) and `bench movielens`.

`bench model`: our best GRU4Rec (fused with the training sessions' item neighbours), the
blend alone, the official configuration and every baseline, both protocols, one table.
GRU4Rec is trained once in the official configuration (cross-entropy, shared
embedding, 100 units, batch 32, 2048 samples, 10 epochs) on one torch thread:
that run gives the training speed. The best preset is that network served
with the session-history blend, so it reuses the same weights unless its
training configuration differs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from sessionrec.model import checkpoint
from sessionrec.model.baselines import ItemKNN, MostPopular, RepeatHistory, SequentialKNN
from sessionrec.model.config import ENSEMBLE_MEMBERS, PRESETS, PROTOCOLS, ServingConfig, TrainConfig
from sessionrec.model.errors import DataError
from sessionrec.model.evaluate import Report, rank_after_history, rank_targets, ranking_metrics
from sessionrec.model.fused import served_scorer
from sessionrec.model.movielens import DATASET, LeaveOneOut, Stage, Task, leave_one_out, load_ratings, make_task, movie_vocabulary, split_long
from sessionrec.model.neighbours import learned_from
from sessionrec.model.protocol import Split, evaluation_sessions, training_vocab
from sessionrec.model.scoring import EnsembleScorer, GRU4RecScorer, Scorer
from sessionrec.model.sessions import Sessions
from sessionrec.model.train import train


def same_training(a: TrainConfig, b: TrainConfig) -> bool:
    """The same weights come out: the configurations differ at most in how the network is served."""
    return replace(a, serving=ServingConfig()) == replace(b, serving=ServingConfig())


def run_model_bench(split: Split, *, progress: bool = True) -> tuple[list[tuple[str, str, Report]], list[dict[str, Any]]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the speed run is defined on one thread
    try:
        official, blend, best = PRESETS["official"], PRESETS["blend"], PRESETS["best"]
        vocab = training_vocab(official.vocab, split)
        train_sessions = Sessions.from_frame(split.train, vocab.copy())
        net, log = train(official, train_sessions, len(vocab), progress=progress)
        best_net = net if same_training(official, best) else train(best, train_sessions, len(vocab), progress=progress)[0]
    finally:
        torch.set_num_threads(threads)
    neighbours = learned_from(train_sessions.items, train_sessions.offsets, best.serving.neighbours)
    scorers: dict[str, tuple[Scorer, int | None]] = {
        "gru4rec best (blend + neighbours)": (served_scorer(best_net, best.serving, neighbours), best.serving.history_len),
        "gru4rec history blend": (served_scorer(best_net, blend.serving, None), blend.serving.history_len),
        "gru4rec official config": (GRU4RecScorer(net), official.serving.history_len),
        "most popular": (MostPopular(train_sessions, len(vocab)), None),
        "repeat, then history": (RepeatHistory(), None),
        "item-kNN": (ItemKNN(train_sessions, len(vocab)), None),
    }
    rows, records = [], []
    for protocol in PROTOCOLS:
        sessions, n_items = evaluation_sessions(protocol, vocab, split)
        for name, (scorer, history_len) in scorers.items():
            report = rank_targets(scorer, sessions, n_items, history_len=history_len or official.serving.history_len, progress=progress).report()
            rows.append((name, protocol, report))
            record = {"model": name, "protocol": protocol, **report.to_dict()}
            if name.startswith("gru4rec"):
                record["train_events_per_s"] = log.events_per_s
            records.append(record)
    return rows, records


def write_json(records: list[dict[str, Any]] | dict[str, Any], path: Path) -> None:
    """The bench's record(s) as the JSON file the README's figures come from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=2))


# --- MovieLens (`sessionrec bench movielens`) ------------------------------------------------------

TRAIN_PIECE_LEN = 200  # GRU4Rec trains on users' histories cut into pieces this long (``split_long``)


def member_seeds(config: TrainConfig, members: int) -> list[int]:
    """The configuration's own seed first, so the first member is the single-network row; then 1, 2, ..."""
    return [config.seed, *[seed for seed in range(1, members + 1) if seed != config.seed][: members - 1]]


def stage_scorers(task: Task, config: TrainConfig = PRESETS["movielens"], *, members: int = ENSEMBLE_MEMBERS,
                  progress: bool = False) -> Iterable[tuple[str, Scorer]]:
    """The models of the bench, each built from the task's histories only (lazily, so progress reads well).

    Plain kNN scores by the last 10 movies and co-occurrence within 5 steps,
    all weighted equally; tuned kNN weighs the latest movies more and tempers
    popularity (``recency``, ``pop_norm`` chosen on the validation targets).
    GRU4Rec is one network; with ``members`` > 1 the networks of that many
    seeds (the first one included) are averaged as one more row.
    """
    yield "most popular", MostPopular(task.train, task.n_known)
    yield "sequential item-kNN (plain)", SequentialKNN(task.train, task.n_known, recency=1.0, pop_norm=0.0)
    yield "sequential item-kNN (tuned)", SequentialKNN(task.train, task.n_known)
    pieces = split_long(task.train, TRAIN_PIECE_LEN)
    nets = []
    for number, seed in enumerate(member_seeds(config, members), start=1):
        label = f"GRU4Rec {number}/{members} " if members > 1 else "GRU4Rec "
        net, _ = train(config.updated(seed=seed), pieces, task.n_known, progress=progress, label=label)
        nets.append(net)
        if len(nets) == 1:
            yield "GRU4Rec", GRU4RecScorer(net)
    if members > 1:
        yield f"GRU4Rec, {members} seeds averaged", EnsembleScorer([GRU4RecScorer(net) for net in nets])


def movielens_stage(split: LeaveOneOut, stage: Stage, config: TrainConfig = PRESETS["movielens"], *, members: int = ENSEMBLE_MEMBERS,
                   progress: bool = False, save: str | Path | None = None) -> list[dict]:
    """One metrics row per model on the stage's targets: "valid" for tuning, "test" for the report.

    ``save`` writes the stage's GRU4Rec as a checkpoint the stream can serve
    (vocabulary: every movie; the ones it never learned are repeated from
    history only, as new items in the stream are): the single network, since
    the worker serves one.
    """
    vocab = movie_vocabulary(split)
    task = make_task(split, stage, vocab)
    rows = []
    for name, scorer in stage_scorers(task, config, members=members, progress=progress):
        ranks = rank_after_history(scorer, task.inputs, task.targets, task.n_items, history_len=config.serving.history_len)
        rows.append({"model": name, **ranking_metrics(ranks)})
        if save is not None and name == "GRU4Rec":
            data = {"dataset": DATASET, "stage": stage, "ratings": len(task.train.items), "users": split.n_users}
            checkpoint.save(checkpoint.Checkpoint(scorer.net, config, vocab, data=data, metrics={"movielens": rows[-1]}), save)
    return rows


def run_movielens_bench(folder: str | Path | None = None, *, min_rating: float | None = None, progress: bool = True,
              stage: Stage = "test", config: TrainConfig = PRESETS["movielens"], n_valid: int = 1,
              members: int = ENSEMBLE_MEMBERS, save: str | Path | None = None) -> list[dict]:
    """Load, split, train every model on what precedes the targets and rank the targets.

    ``users`` in a row counts the ranked targets: one per user, except for the
    validation stage with ``n_valid`` > 1.
    """
    split = leave_one_out(load_ratings(folder, min_rating), n_valid)
    if split.n_users == 0:
        raise DataError("no user has three ratings to split into history, validation and test")
    if members < 1:
        raise DataError("the GRU4Rec ensemble needs at least one member")
    return movielens_stage(split, stage, config, members=members, progress=progress, save=save)
