"""Data sets the project has never seen, through the command line with flags only: a tab-separated
SessionId/ItemId/Time pair, a REES46-style export (date-time text, mixed event types), the time split,
column options over a format, and the refusal of a checkpoint of another catalogue."""

import asyncio
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from sessionrec.model.protocol import load_split
from sessionrec.stream.cli.main import main
from tests.test_replay import consume_all

TINY = ["--epochs", "1", "--layers", "8", "--n-sample", "16", "--batch-size", "8"]  # seconds, not minutes
START = 1_569_888_000  # 2019-10-01 00:00:00 UTC
HOUR = 3600


def sessions(n: int, first_item: int, start: int = START) -> list[tuple[str, int, int]]:
    """``n`` sessions an hour apart, each walking 2-4 steps along a ring of 20 items: (session, item, unix time)."""
    rows = []
    for s in range(n):
        for k in range(2 + s % 3):
            rows.append((f"S{s}", first_item + (s + k) % 20, start + s * HOUR + k * 30))
    return rows


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def ok(*args):
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def gru4rec_pair(tmp_path):
    """GRU4Rec's own layout: tab-separated SessionId, ItemId, Time, files named as the user likes."""
    frame = pd.DataFrame(sessions(60, 100), columns=["SessionId", "ItemId", "Time"])
    train, test = tmp_path / "shop.train.tsv", tmp_path / "shop.test.tsv"
    frame[frame.SessionId.str[1:].astype(int) < 45].to_csv(train, sep="\t", index=False)
    frame[frame.SessionId.str[1:].astype(int) >= 45].to_csv(test, sep="\t", index=False)
    return train, test


def rees46_export(path, rows):
    """A REES46 / Open CDP export: every view followed by a cart event on an item of its own (9000+)."""
    out = []
    for session, item, ts in rows:
        when = pd.Timestamp(ts, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
        out.append((when, "view", item, "2053013555631882655", "electronics.smartphone", "samsung", "130.76", "541312140", f"u-{session}"))
        out.append((when, "cart", 9000 + item, "2053013555631882655", "", "", "1.00", "541312140", f"u-{session}"))
    columns = ["event_time", "event_type", "product_id", "category_id", "category_code", "brand", "price", "user_id", "user_session"]
    pd.DataFrame(out, columns=columns).to_csv(path, index=False)
    return path


def test_a_gru4rec_pair_trains_and_evaluates_with_flags_only(tmp_path, gru4rec_pair, monkeypatch):
    train, test = gru4rec_pair
    files = ["--train", train, "--test", test, "--format", "gru4rec"]
    ok("train", *files, *TINY, "--out", tmp_path / "model")
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    train_rows = pd.read_csv(train, sep="\t")
    assert meta["data"]["train"] == str(train) and meta["data"]["clicks"] == len(train_rows)
    assert meta["data"]["items"] == train_rows.ItemId.nunique()
    report = json.loads(ok("evaluate", "--model", tmp_path / "model", *files, "--json").output)
    test_rows = pd.read_csv(test, sep="\t")
    assert report["targets"] == len(test_rows) - test_rows.SessionId.nunique()  # every click after a session's first
    assert report["recall@20"] > 0  # the ring of 20 items: the model knows every test item
    monkeypatch.chdir(tmp_path)  # short names, so that the table's title is not wrapped
    table = ok("evaluate", "--model", "model", "--train", train.name, "--test", test.name, "--format", "gru4rec").output
    assert f"Next-click evaluation on {test.name} (training clicks: {train.name})" in table


def test_a_rees46_export_trains_and_evaluates_on_its_views_only(tmp_path):
    train = rees46_export(tmp_path / "2019-Oct.csv", sessions(45, 100))
    test = rees46_export(tmp_path / "2019-Nov.csv", sessions(15, 100, START + 45 * HOUR))
    files = ["--train", train, "--test", test, "--format", "rees46", "--event-type", "view"]
    ok("train", *files, *TINY, "--out", tmp_path / "model")
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    views = pd.read_csv(train).query("event_type == 'view'")
    assert meta["data"]["clicks"] == len(views) and meta["data"]["items"] == views.product_id.nunique() == 20  # no cart item left
    test_views = pd.read_csv(test).query("event_type == 'view'")
    report = json.loads(ok("evaluate", "--model", tmp_path / "model", *files, "--json").output)
    assert report["targets"] == len(test_views) - test_views.user_session.nunique()
    bench = json.loads(ok("bench", "model", *files, "--json", "--out", tmp_path / "bench.json").output)
    assert {row["targets"] for row in bench if row["protocol"] == "seed"} == {report["targets"]}


def test_a_rees46_export_replays_its_views_with_their_times(tmp_path, kafka_bootstrap, topic_name):
    rows = sessions(10, 100)
    export = rees46_export(tmp_path / "export.csv", rows)
    ok("replay", export, "--format", "rees46", "--event-type", "view", "--bootstrap", kafka_bootstrap, "--topic", topic_name, "--no-progress")
    got = asyncio.run(consume_all(kafka_bootstrap, topic_name, len(rows)))
    clicks = sorted((json.loads(m.value) for ms in got.values() for m in ms), key=lambda c: (c["ts"], c["item_id"]))
    assert [(c["session_id"], c["item_id"], c["ts"]) for c in clicks] == sorted(((f"u-{s}", i, float(t)) for s, i, t in rows), key=lambda r: (r[2], r[1]))


def test_split_puts_sessions_ending_in_the_last_days_in_test(tmp_path):
    rows = [
        ("early", 1, START), ("early", 2, START + 60),
        ("straddles", 2, START + 2 * 86400), ("straddles", 3, START + 3 * 86400 + 10),  # ends on the cut: the last click - 1 day
        ("before", 1, START + 3 * 86400 - 10), ("before", 2, START + 3 * 86400 + 9),  # ends a second before it
        ("late", 3, START + 4 * 86400), ("late", 77, START + 4 * 86400 + 10),  # 77: a test item never seen in training
    ]
    export = rees46_export(tmp_path / "export.csv", rows)
    result = ok("split", export, "--format", "rees46", "--event-type", "view", "--test-days", "1", "--out", tmp_path / "pair")
    assert "train: 4 clicks in 2 sessions; test: 4 clicks in 2 sessions" in result.output
    pair = load_split(tmp_path / "pair")  # the default format: every command reads it with --data
    assert set(pair.train.session_id) == {"u-early", "u-before"} and set(pair.test.session_id) == {"u-straddles", "u-late"}
    assert "77" in set(pair.test.item_id) and not pair.test.item_id.str.startswith("9").any()
    assert pair.test.ts.min() == START + 2 * 86400  # a test session keeps its clicks before the cut
    result = cli("split", export, "--format", "rees46", "--test-days", "5", "--out", tmp_path / "none")
    assert result.exit_code == 1 and "none is left to train on" in result.output


def test_column_options_override_the_format(tmp_path):
    text = "visit;thing;when;note\nv1;7;2019-10-01T00:00:00Z;a\nv1;8;2019-10-01T00:01:00Z;b\nv2;8;2019-10-03T00:00:00Z;c\n"
    (tmp_path / "clicks.txt").write_text(text)
    options = ["--format", "gru4rec", "--session-col", "visit", "--item-col", "thing", "--sep", ";", "--time-format", "datetime"]
    ok("split", tmp_path / "clicks.txt", *options, "--time-col", "when", "--test-days", "1", "--out", tmp_path / "pair")
    pair = load_split(tmp_path / "pair")
    assert pair.train.values.tolist() == [["v1", "7", START], ["v1", "8", START + 60]] and pair.test.session_id.tolist() == ["v2"]
    result = cli("split", tmp_path / "clicks.txt", *options, "--test-days", "1", "--out", tmp_path / "bad")  # gru4rec's own time column
    assert result.exit_code == 1 and "missing column(s) Time; found visit, thing, when, note" in result.output


def test_a_checkpoint_of_another_catalogue_is_refused(tmp_path, gru4rec_pair, kafka_bootstrap, redis_url):
    train, test = gru4rec_pair
    ok("train", "--train", train, "--test", test, "--format", "gru4rec", *TINY, "--out", tmp_path / "model")
    foreign = pd.DataFrame(sessions(30, 5000), columns=["SessionId", "ItemId", "Time"])
    foreign.to_csv(tmp_path / "other.tsv", sep="\t", index=False)
    result = cli("evaluate", "--model", tmp_path / "model", "--train", tmp_path / "other.tsv", "--test", tmp_path / "other.tsv", "--format", "gru4rec")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "knows 0 of the 20 items in" in result.output and "below 1%" in result.output and "--train FILE --test FILE" in result.output
    result = cli("demo", "--model", tmp_path / "model", "--data", tmp_path / "other.tsv", "--format", "gru4rec",
                 "--bootstrap", kafka_bootstrap, "--redis-url", redis_url)  # refused before any worker starts
    assert result.exit_code == 1 and "knows 0 of the 20 items in" in result.output and "--model DIR" in result.output


def test_the_split_is_named_once(tmp_path, gru4rec_pair):
    train, test = gru4rec_pair
    result = cli("train", "--data", tmp_path, "--train", train, "--test", test)
    assert result.exit_code == 1 and "not both" in result.output
    result = cli("evaluate", "--train", train, "--format", "gru4rec")
    assert result.exit_code == 1 and "--train and --test go together" in result.output


CLICK_OPTIONS = {"--format", "--session-col", "--item-col", "--time-col", "--sep", "--time-format", "--event-type"}  # the loader's hints name some


@pytest.mark.parametrize("path", [["split"], ["train"], ["evaluate"], ["bench", "model"], ["replay"], ["demo"]])
def test_every_command_that_reads_clicks_takes_the_same_click_options(path):
    command = main
    for name in path:
        command = command.get_command(None, name)
    names = {option for param in command.params for option in param.opts}
    assert names >= CLICK_OPTIONS
    assert names >= {"--data", "--train", "--test"} or path[0] in ("split", "replay", "demo")
