"""Offline commands: train, evaluate, bench model, bench movielens."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sessionrec.model.config import ENSEMBLE_MEMBERS, LOSS_NAMES, OPTIMIZERS, PRESETS, PROTOCOLS
from sessionrec.stream.cli.options import layers

DEFAULT_MODEL = Path("runs/model")
DATA_HELP = "Folder with train_data.csv and test_data.csv [default: $SESSIONREC_DATA/ecommerce or ../shared/data/ecommerce]."


@click.command()
@click.option("--data", "data", type=click.Path(path_type=Path), default=None, help=DATA_HELP)
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="best", show_default=True,
              help="lab = the course model; official = GRU4Rec's defaults; best = the official network (the same weights) "
                   "served with the session-history blend; movielens = the MovieLens configuration.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, help="JSON file of configuration keys, applied over the preset.")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_MODEL, show_default=True, help="Checkpoint folder to write.")
@click.option("--epochs", type=int, default=None)
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None)
@click.option("--loss", type=click.Choice(LOSS_NAMES), default=None)
@click.option("--layers", type=str, default=None, callback=layers, help="GRU layer sizes, e.g. 100 or 100,100.")
@click.option("--embedding", type=int, default=None, help="Separate input embedding size; 0 shares the output embedding.")
@click.option("--n-sample", type=int, default=None, help="Extra negatives per batch, by popularity**alpha.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=None)
@click.option("--seed", type=int, default=None)
@click.option("--threads", type=int, default=None, help="torch CPU threads [default: torch's choice].")
def train(data, preset, config_file, out, threads, **overrides: object) -> None:  # noqa: ANN001 - click passes the options
    """Train GRU4Rec on the training clicks, evaluate on the test clicks, write a checkpoint."""
    import torch

    from sessionrec.model import checkpoint
    from sessionrec.model.config import load_config
    from sessionrec.model.protocol import load_split
    from sessionrec.model.report import console, reports_table
    from sessionrec.model.workflow import evaluate_checkpoint, train_checkpoint

    if threads:
        torch.set_num_threads(threads)
    config = load_config(preset, config_file, **overrides)
    split = load_split(data)
    ckpt, events_per_s = train_checkpoint(config, split)
    report = evaluate_checkpoint(ckpt, split, "seed", progress=True)
    ckpt.metrics = {"seed": report.to_dict()}
    checkpoint.save(ckpt, out)
    console.print(reports_table([(f"gru4rec ({preset})", "seed", report)], title=f"{out} ({ckpt.version}), trained at {events_per_s:,.0f} events/s"))


@click.command()
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=DEFAULT_MODEL, show_default=True, help="Checkpoint folder.")
@click.option("--data", "data", type=click.Path(path_type=Path), default=None, help=DATA_HELP)
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="seed", show_default=True,
              help="seed = the course lab's; official = GRU4Rec's (test items unseen in train dropped).")
@click.option("--session-timeout", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds of event-time pause that reset a session's state, as the stream does (the model's rule: 1800); 0 = never, as the protocols define.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def evaluate(model_dir, data, protocol, session_timeout, as_json) -> None:  # noqa: ANN001 - click passes the options
    """Next-click evaluation of a checkpoint: full ranking, ties counted pessimistically."""
    from sessionrec.model import checkpoint
    from sessionrec.model.protocol import load_split
    from sessionrec.model.report import console, reports_table
    from sessionrec.model.workflow import evaluate_checkpoint

    ckpt = checkpoint.load(model_dir)
    report = evaluate_checkpoint(ckpt, load_split(data), protocol, session_timeout=session_timeout, progress=not as_json)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        console.print(reports_table([(f"{model_dir} ({ckpt.version})", protocol, report)]))


@click.command("model")
@click.option("--data", "data", type=click.Path(path_type=Path), default=None, help=DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON list instead of the table.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/bench/model.json"), show_default=True, help="JSON file written in any case.")
def bench_model(data, as_json, out) -> None:  # noqa: ANN001 - click passes the options
    """GRU4Rec (best and official configurations) and the baselines, in both protocols.

    Trains GRU4Rec once on one torch thread (its speed is reported as
    train_events_per_s) and evaluates everything with the same evaluator.
    """
    from sessionrec.model.bench import run_model_bench, write_json
    from sessionrec.model.protocol import load_split
    from sessionrec.model.report import console, reports_table

    rows, records = run_model_bench(load_split(data), progress=not as_json)
    write_json(records, out)
    if as_json:
        click.echo(json.dumps(records))
    else:
        speed = records[0]["train_events_per_s"]
        console.print(reports_table(rows, title=f"Next-click evaluation; GRU4Rec trained at {speed:,.0f} events/s on one thread"))


@click.command("movielens")
@click.option("--data", "data", type=click.Path(path_type=Path), default=None,
              help="Folder with ratings.csv [default: $SESSIONREC_DATA/movielens-small or ../shared/data/movielens-small].")
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
def bench_movielens(data, min_rating, stage, valid_ratings, members, as_json, out, save) -> None:  # noqa: ANN001 - click passes the options
    """GRU4Rec on MovieLens users' rating sequences against most popular and sequential item-kNN.

    Leave-one-out by time; every model learns only from the ratings before
    the ranked one, and movies the user already rated are excluded from the
    ranking. GRU4Rec trains on one torch thread, each ensemble member in
    turn (about 7 minutes each here).
    """
    import torch

    from sessionrec.model.bench import run_movielens_bench, write_json
    from sessionrec.model.report import console, movielens_table

    torch.set_num_threads(1)
    rows = run_movielens_bench(data, min_rating=min_rating, stage=stage, n_valid=valid_ratings, members=members, progress=not as_json, save=save)
    write_json(rows, out)
    if as_json:
        click.echo(json.dumps(rows))
    else:
        console.print(movielens_table(rows, stage, valid_ratings))
