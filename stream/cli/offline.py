"""Offline commands: split, train, evaluate, bench model, bench train, bench movielens."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sessionrec.model.config import ENSEMBLE_MEMBERS, LOSS_NAMES, OPTIMIZERS, PRESETS, PROTOCOLS
from sessionrec.model.formats import Columns
from sessionrec.stream.cli.options import layers, with_clicks, with_split

DEFAULT_MODEL = Path("runs/model")


@click.command()
@click.argument("clicks", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--test-days", type=click.FloatRange(min=0, min_open=True), required=True, metavar="N",
              help="Sessions that end within the last N days of the file are the test sessions.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True, metavar="FOLDER",
              help="Folder to write train_data.csv and test_data.csv into (files there are replaced).")
@with_clicks
def split(clicks: Path, test_days: float, out: Path, columns: Columns) -> None:
    """Split one click file by time into the train/test pair every command reads (--data FOLDER).

    As GRU4Rec's preprocessing: a session whose last click lies within the
    last N days of the file is a test session, every other one a training
    session. Test items never seen in training are kept (the official
    protocol drops them when it evaluates). Both files are written in the
    ecommerce format (event_time in unix seconds, product_id, user_session).
    """
    from sessionrec.model.data import read_clicks, write_clicks
    from sessionrec.model.timesplit import split_by_time

    cut = split_by_time(read_clicks(clicks, columns), test_days)
    out.mkdir(parents=True, exist_ok=True)
    write_clicks(cut.train, out / "train_data.csv")
    write_clicks(cut.test, out / "test_data.csv")
    click.echo(f"{clicks} -> {out}: {cut.line()}")


@click.command()
@with_split
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="best", show_default=True,
              help="lab = the course model; official = GRU4Rec's defaults; best = trains exactly the official weights and "
                   "serves them with the session-history blend; movielens = the MovieLens configuration.")
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
def train(split, preset, config_file, out, threads, **overrides: object) -> None:  # noqa: ANN001 - click passes the options
    """Train GRU4Rec on the training clicks, evaluate on the test clicks, write a checkpoint.

    The clicks: --data FOLDER (train_data.csv, test_data.csv) or --train FILE
    --test FILE, in any --format, with column options on top.
    """
    import torch

    from sessionrec.model import checkpoint
    from sessionrec.model.config import load_config
    from sessionrec.model.report import console, reports_table
    from sessionrec.model.workflow import evaluate_checkpoint, train_checkpoint

    if threads:
        torch.set_num_threads(threads)
    config = load_config(preset, config_file, **overrides)
    clicks = split.load()
    ckpt, events_per_s = train_checkpoint(config, clicks)
    report = evaluate_checkpoint(ckpt, clicks, "seed", progress=True)
    ckpt.metrics = {"seed": report.to_dict()}
    checkpoint.save(ckpt, out)
    title = f"{out} ({ckpt.version}), trained on {clicks.train_path} at {events_per_s:,.0f} events/s, evaluated on {clicks.test_path}"
    console.print(reports_table([(f"gru4rec ({preset})", "seed", report)], title=title))


@click.command()
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=DEFAULT_MODEL, show_default=True, help="Checkpoint folder.")
@with_split
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="seed", show_default=True,
              help="seed = the course lab's; official = GRU4Rec's (test items unseen in train dropped).")
@click.option("--session-timeout", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds of event-time pause that reset a session's state, as the stream does (the model's rule: 1800); 0 = never, as the protocols define.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def evaluate(model_dir, split, protocol, session_timeout, as_json) -> None:  # noqa: ANN001 - click passes the options
    """Next-click evaluation of a checkpoint: full ranking, ties counted pessimistically.

    Without --data or --train/--test it evaluates on the default data folder
    (the table's title names the files). A checkpoint that knows almost none
    of the test clicks' items is refused: it belongs to another catalogue.
    """
    from sessionrec.model import checkpoint
    from sessionrec.model.data import ITEM
    from sessionrec.model.protocol import require_shared_catalogue
    from sessionrec.model.report import console, reports_table
    from sessionrec.model.workflow import evaluate_checkpoint

    ckpt = checkpoint.load(model_dir)
    clicks = split.load()
    require_shared_catalogue(ckpt.vocab, clicks.test[ITEM], f"the checkpoint {model_dir}", str(clicks.test_path),
                             "evaluate it on the clicks of its own catalogue (--data FOLDER, or --train FILE --test FILE)")
    report = evaluate_checkpoint(ckpt, clicks, protocol, session_timeout=session_timeout, progress=not as_json)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        title = f"Next-click evaluation on {clicks.test_path} (training clicks: {clicks.train_path})"
        console.print(reports_table([(f"{model_dir} ({ckpt.version})", protocol, report)], title=title))


@click.command("model")
@with_split
@click.option("--json", "as_json", is_flag=True, help="Print the JSON list instead of the table.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/bench/model.json"), show_default=True, help="JSON file written in any case.")
def bench_model(split, as_json, out) -> None:  # noqa: ANN001 - click passes the options
    """GRU4Rec (best and official configurations) and the baselines, in both protocols.

    Trains GRU4Rec once on one torch thread (its speed is reported as
    train_events_per_s) and evaluates everything with the same evaluator.
    """
    from sessionrec.model.bench import run_model_bench, write_json
    from sessionrec.model.report import console, reports_table

    rows, records = run_model_bench(split.load(), progress=not as_json)
    write_json(records, out)
    if as_json:
        click.echo(json.dumps(records))
    else:
        speed = records[0]["train_events_per_s"]
        console.print(reports_table(rows, title=f"Next-click evaluation; GRU4Rec trained at {speed:,.0f} events/s on one thread"))


@click.command("train")
@click.argument("data", type=click.Path(path_type=Path), required=False)
@click.option("--official", type=click.Path(path_type=Path), required=True, metavar="PATH",
              help="Folder with the official GRU4Rec's gru4rec_pytorch.py (git clone https://github.com/hidasib/GRU4Rec_PyTorch_Official).")
@click.option("--runs", type=click.IntRange(min=1), default=4, show_default=True, help="Runs of each implementation, in ABBA order.")
@click.option("--epochs", type=click.IntRange(min=1), default=3, show_default=True, help="Epochs each run trains.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON record instead of the table.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/bench/train.json"), show_default=True, help="JSON file written in any case.")
def bench_train(data, official, runs, epochs, as_json, out) -> None:  # noqa: ANN001 - click passes the options
    """Training speed of ours against the official GRU4Rec PyTorch code: the official preset, one thread.

    DATA is a folder with train_data.csv or a click file (ecommerce format)
    [default: the electronics shop's]. Each run is a fresh process; runs
    alternate ours, official, official, ours, ... and the medians are compared.
    """
    from sessionrec.model.bench import write_json
    from sessionrec.model.protocol import default_split_dir
    from sessionrec.model.report import console, train_bench_table
    from sessionrec.model.trainbench import Run, run_train_bench

    data = data or default_split_dir()
    clicks = data / "train_data.csv" if data.is_dir() else data

    def progress(run: Run) -> None:
        if not as_json:
            console.print(f"{run.implementation}: {run.events_per_s:,.0f} events/s ({run.events:,} events in {run.seconds:.2f} s)")

    record = run_train_bench(clicks, official, runs=runs, epochs=epochs, on_run=progress)
    write_json(record, out)
    if as_json:
        click.echo(json.dumps(record))
    else:
        console.print(train_bench_table(record))


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
