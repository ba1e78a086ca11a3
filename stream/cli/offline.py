"""Offline commands: train, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import click
import torch

from sessionrec.model import checkpoint
from sessionrec.model.config import PRESETS, load_config
from sessionrec.model.evaluate import rank_targets
from sessionrec.model.movielens import ENSEMBLE_MEMBERS
from sessionrec.model.protocol import PROTOCOLS, default_split_dir, evaluation_sessions, load_split, training_vocab
from sessionrec.model.report import console, reports_table
from sessionrec.model.scoring import GRU4RecScorer
from sessionrec.model.sessions import Sessions
from sessionrec.model.train import train as train_network

DEFAULT_MODEL = Path("runs/model")


def _layers(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter("give layer sizes as integers, e.g. 100 or 100,100") from None


def train_checkpoint(config, split, *, progress: bool = True) -> tuple[checkpoint.Checkpoint, float]:
    """Train on the split's training file; returns the checkpoint and training events/s."""
    vocab = training_vocab(config.vocab, split)
    sessions = Sessions.from_frame(split.train, vocab.copy(), config.session_timeout)
    net, log = train_network(config, sessions, len(vocab), progress=progress)
    data = {"train": str(split.folder / "train_data.csv"), "clicks": int(len(split.train)), "sessions": sessions.n_sessions,
            "targets": sessions.n_targets, "items": len(vocab), "epoch_loss": log.epoch_loss, "events_per_s": log.events_per_s}
    return checkpoint.Checkpoint(net=net, config=config, vocab=vocab, data=data), log.events_per_s


def evaluate_checkpoint(ckpt: checkpoint.Checkpoint, split, protocol: str, *, session_timeout: float | None = None, progress: bool = False):
    timeout = ckpt.config.session_timeout if session_timeout is None else session_timeout
    sessions, n_items = evaluation_sessions(protocol, ckpt.vocab, split, timeout)
    scorer = GRU4RecScorer(ckpt.net, ckpt.config.history_weight, ckpt.config.history_decay)
    return rank_targets(scorer, sessions, n_items, history_len=ckpt.config.history_len, progress=progress).report()


def ensure_checkpoint(folder: str | Path) -> None:
    """Train the best configuration into ``folder`` unless a checkpoint is there already."""
    if (Path(folder) / checkpoint.META).is_file():
        return
    console.print(f"No model in {folder}: training GRU4Rec (preset best) on {default_split_dir()} first.")
    ckpt, _ = train_checkpoint(load_config("best", None), load_split())
    checkpoint.save(ckpt, folder)


@click.command()
@click.option("--data", "data", type=click.Path(path_type=Path), default=None, help="Folder with train_data.csv and test_data.csv [default: ../shared/data/ecommerce].")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="best", show_default=True, help="lab = the course model; official = GRU4Rec's defaults; best = ours.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, help="JSON file of configuration keys, applied over the preset.")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_MODEL, show_default=True, help="Checkpoint folder to write.")
@click.option("--epochs", type=int, default=None)
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None)
@click.option("--loss", type=str, default=None, help="cross-entropy, bpr, top1, bpr-max or top1-max.")
@click.option("--layers", type=str, default=None, help="GRU layer sizes, e.g. 100 or 100,100.")
@click.option("--embedding", type=int, default=None, help="Separate input embedding size; 0 shares the output embedding.")
@click.option("--n-sample", type=int, default=None, help="Extra negatives per batch, by popularity**alpha.")
@click.option("--optimizer", type=click.Choice(["adagrad", "adam"]), default=None)
@click.option("--seed", type=int, default=None)
@click.option("--threads", type=int, default=None, help="torch CPU threads [default: torch's choice].")
def train(data, preset, config_file, out, threads, layers, **overrides) -> None:
    """Train GRU4Rec on the training clicks, evaluate on the test clicks, write a checkpoint."""
    if threads:
        torch.set_num_threads(threads)
    config = load_config(preset, config_file, layers=_layers(layers), **overrides)
    split = load_split(data)
    ckpt, events_per_s = train_checkpoint(config, split)
    report = evaluate_checkpoint(ckpt, split, "seed", progress=True)
    ckpt.metrics = {"seed": report.to_dict()}
    checkpoint.save(ckpt, out)
    console.print(reports_table([(f"gru4rec ({preset})", "seed", report)], title=f"{out} ({ckpt.version}), trained at {events_per_s:,.0f} events/s"))


@click.command()
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=DEFAULT_MODEL, show_default=True, help="Checkpoint folder.")
@click.option("--data", "data", type=click.Path(path_type=Path), default=None, help="Folder with train_data.csv and test_data.csv [default: ../shared/data/ecommerce].")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="seed", show_default=True, help="seed = the course lab's; official = GRU4Rec's (test items unseen in train dropped).")
@click.option("--session-timeout", type=float, default=None, help="Seconds of pause that reset a session's state, as the stream does [default: the model's].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def evaluate(model_dir, data, protocol, session_timeout, as_json) -> None:
    """Next-click evaluation of a checkpoint: full ranking, ties counted pessimistically."""
    ckpt = checkpoint.load(model_dir)
    report = evaluate_checkpoint(ckpt, load_split(data), protocol, session_timeout=session_timeout, progress=not as_json)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        console.print(reports_table([(f"{model_dir} ({ckpt.version})", protocol, report)]))


@click.command("model")
@click.option("--data", "data", type=click.Path(path_type=Path), default=None, help="Folder with train_data.csv and test_data.csv [default: ../shared/data/ecommerce].")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON list instead of the table.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/bench/model.json"), show_default=True, help="JSON file written in any case.")
def bench_model(data, as_json, out) -> None:
    """GRU4Rec (best and official configurations) and the baselines, in both protocols.

    Trains GRU4Rec once on one torch thread (its speed is reported as
    train_events_per_s) and evaluates everything with the same evaluator.
    """
    from sessionrec.model.bench import run_model_bench, write_json

    rows, records = run_model_bench(load_split(data), progress=not as_json)
    write_json(records, out)
    if as_json:
        click.echo(json.dumps(records))
    else:
        speed = records[0]["train_events_per_s"]
        console.print(reports_table(rows, title=f"Next-click evaluation; GRU4Rec trained at {speed:,.0f} events/s on one thread"))


@click.command("movielens")
@click.option("--data", "data", type=click.Path(path_type=Path), default=None, help="Folder with ratings.csv [default: ../shared/data/movielens-small].")
@click.option("--min-rating", type=float, default=None, help="Keep only ratings at or above this (liked movies) before the split.")
@click.option("--stage", type=click.Choice(["test", "valid"]), default="test", show_default=True,
              help="test = rank each user's last rating; valid = the rating(s) before it (--valid-ratings), for tuning.")
@click.option("--valid-ratings", type=click.IntRange(min=1), default=1, show_default=True,
              help="Ratings before each user's last that are validation targets (--stage valid); more make tuning less noisy.")
@click.option("--members", type=click.IntRange(min=1), default=ENSEMBLE_MEMBERS, show_default=True,
              help="GRU4Rec networks (seeds) averaged in the ensemble row; 1 = the single network only.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON list instead of the table.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/bench/movielens.json"), show_default=True, help="JSON file written in any case.")
@click.option("--save", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Also write the single GRU4Rec network as a checkpoint the worker can serve (SESSIONREC_MODEL_DIR).")
def bench_movielens(data, min_rating, stage, valid_ratings, members, as_json, out, save) -> None:
    """GRU4Rec on MovieLens users' rating sequences against most popular and sequential item-kNN.

    Leave-one-out by time; every model learns only from the ratings before
    the ranked one, and movies the user already rated are excluded from the
    ranking. GRU4Rec trains on one torch thread, each ensemble member in
    turn (about 7 minutes each here).
    """
    from sessionrec.model.bench import write_json
    from sessionrec.model.movielens import bench_table, run_bench

    torch.set_num_threads(1)
    rows = run_bench(data, min_rating=min_rating, stage=stage, n_valid=valid_ratings, members=members, progress=not as_json, save=save)
    write_json(rows, out)
    if as_json:
        click.echo(json.dumps(rows))
    else:
        console.print(bench_table(rows, stage, valid_ratings))


commands = [train, evaluate]
bench_commands = [bench_model, bench_movielens]
