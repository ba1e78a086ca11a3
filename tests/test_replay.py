"""replay/: pacing (pure, fake clock), loading and encoding, and a real replay into Tansu."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from click.testing import CliRunner

from sessionrec.model.data import DataError, data_dir
from sessionrec.replay.kafka.connection import KafkaConnection
from sessionrec.replay.kafka.wire import is_int_text
from sessionrec.replay.pacing import Pacing, bursts, parse_speed
from sessionrec.replay.replayer import ReplaySummary, replay
from sessionrec.replay.source import encode, frame_records, load_stream
from sessionrec.stream.local.servers import free_port
from tests.contracts import assert_valid

TEST_CSV = data_dir() / "ecommerce" / "test_data.csv"


# --- pacing ---------------------------------------------------------------------------------


class FakeTime:
    """A clock and sleep that only move when told; ``work`` is how long the consumer takes per burst."""

    def __init__(self, work: float = 0.0) -> None:
        self.now = 1000.0
        self.work = work
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def play(clicks: list[dict[str, Any]], pacing: Pacing, fake: FakeTime, **kwargs: Any) -> list[tuple[float, list[Any]]]:
    """(seconds after start, burst) for every burst, with the fake clock."""

    async def run() -> list[tuple[float, list[Any]]]:
        start, out = fake.now, []
        async for burst in bursts(clicks, pacing, clock=fake.clock, sleep=fake.sleep, **kwargs):
            out.append((round(fake.now - start, 9), [c["n"] for c in burst]))
            fake.now += fake.work
        return out

    return asyncio.run(run())


def clicks_at(*times: float) -> list[dict[str, Any]]:
    return [{"n": n, "session_id": "s", "item_id": 1, "ts": t} for n, t in enumerate(times)]


def test_speed_scales_event_time_gaps() -> None:
    fake = FakeTime()
    out = play(clicks_at(5000, 5000, 5060, 5120, 5120), Pacing(speed=60), fake)
    assert out == [(0.0, [0, 1]), (1.0, [2]), (2.0, [3, 4])]


def test_fixed_rate_ignores_event_time() -> None:
    fake = FakeTime()
    out = play(clicks_at(1, 1, 1, 900, 901), Pacing(rate=4), fake)
    assert out == [(0.0, [0]), (0.25, [1]), (0.5, [2]), (0.75, [3]), (1.0, [4])]


def test_max_speed_never_sleeps_and_caps_bursts() -> None:
    fake = FakeTime()
    out = play(clicks_at(*range(0, 10_000, 1000)), Pacing(), fake, max_burst=4)
    assert [ns for _, ns in out] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert fake.sleeps == []


def test_schedule_does_not_drift_when_sending_takes_time() -> None:
    fake = FakeTime(work=0.3)  # each burst costs 0.3 s to send
    out = play(clicks_at(*range(5)), Pacing(speed=1), fake)
    assert [t for t, _ in out] == [0.0, 1.0, 2.0, 3.0, 4.0]  # not 0, 1.3, 2.6, ...
    assert fake.sleeps == pytest.approx([0.7] * 4)


def test_falling_behind_catches_up_in_bursts() -> None:
    fake = FakeTime(work=2.5)
    out = play(clicks_at(*range(6)), Pacing(speed=1), fake)
    assert out == [(0.0, [0]), (2.5, [1, 2]), (5.0, [3, 4, 5])]


def test_paced_clicks_leave_in_ticks_never_late() -> None:
    fake = FakeTime()
    out = play(clicks_at(*[n / 1000 for n in range(1000)]), Pacing(rate=1000), fake)  # a click every millisecond
    starts = [t for t, _ in out]
    assert all(b - a >= 0.2 - 1e-9 for a, b in zip(starts, starts[1:]))  # one burst per 200 ms tick, not one per click
    for at, burst in out:
        assert all(n / 1000 - 0.2 - 1e-9 <= at <= n / 1000 + 1e-9 for n in burst)  # never late, at most a tick early
    fine = play(clicks_at(*[n / 1000 for n in range(50)]), Pacing(rate=1000, tick_s=0.002), FakeTime())
    assert len(fine) >= 16  # a latency run can ask for a finer tick


def test_parse_speed() -> None:
    assert parse_speed("max") is None and parse_speed(" MAX ") is None
    assert parse_speed("60") == parse_speed("60x") == parse_speed("60X") == 60.0
    assert parse_speed("0.5x") == 0.5
    for bad in ("fast", "0", "0x", "-3x", "x", "60xx", ""):
        with pytest.raises(ValueError):
            parse_speed(bad)
    with pytest.raises(ValueError):
        Pacing(speed=2, rate=10)
    with pytest.raises(ValueError):
        Pacing(rate=0)


# --- loading and encoding --------------------------------------------------------------------


def write_csv(path: Path, rows: list[tuple[Any, ...]], header: str = "event_time,product_id,user_session") -> Path:
    path.write_text(header + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))
    return path


def test_load_orders_by_time_keeping_file_order_on_ties(tmp_path: Path) -> None:
    rows = [(30, 1, "b"), (10, 2, "a"), (20, 3, "b"), (10, 4, "b"), (20, 5, "a"), (10, 6, "a"), (5, 7, "c")]
    frame = load_stream(write_csv(tmp_path / "c.csv", rows))
    assert frame["item_id"].tolist() == ["7", "2", "4", "6", "3", "5", "1"]
    assert load_stream(tmp_path / "c.csv", limit=3)["item_id"].tolist() == ["7", "2", "4"]


def test_load_real_file_is_a_stable_time_order() -> None:
    frame = load_stream(TEST_CSV)
    raw = pd.read_csv(TEST_CSV, dtype=str)
    expected = raw.assign(t=raw["event_time"].astype(float)).sort_values("t", kind="stable")
    assert frame["session_id"].tolist() == expected["user_session"].tolist()
    assert frame["item_id"].tolist() == expected["product_id"].tolist()
    assert frame["ts"].is_monotonic_increasing


def test_missing_column_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="user_session"):
        load_stream(write_csv(tmp_path / "c.csv", [(1, 2)], header="event_time,product_id"))


def wire_item(raw: str) -> int | str:
    """A click's item id as the wire carries it: an int when the text is one that reads back as the same text."""
    return int(raw) if is_int_text(raw) else raw


def test_item_ids_are_ints_only_when_the_text_is_one() -> None:
    assert all(is_int_text(text) for text in ("523117", "0", "-5"))
    for text in ("007", "abc", "12a", "1.5", "-0", "١٢", " 1", ""):
        assert not is_int_text(text)


def test_records_follow_the_wire_contract() -> None:
    frame = pd.DataFrame({"session_id": ["s1", 'we"ird é', "s1"], "item_id": ["42", "x-1", "007"], "ts": [1.5, 2.0, 1600938033.0]})
    records = list(frame_records(frame))
    decoded = [json.loads(value) for _, value, _ in records]
    assert decoded == [{"session_id": "s1", "item_id": 42, "ts": 1.5}, {"session_id": 'we"ird é', "item_id": "x-1", "ts": 2.0},
                       {"session_id": "s1", "item_id": "007", "ts": 1600938033.0}]
    assert [key for key, _, _ in records] == [b"s1", 'we"ird é'.encode(), b"s1"]
    assert [encode(click) for click in decoded] == records  # dict clicks encode the same bytes
    with pytest.raises(ValueError):
        encode({"session_id": "s", "item_id": 1.5, "ts": 1})
    with pytest.raises(ValueError):
        encode({"session_id": "s", "item_id": 1, "ts": float("nan")})


# --- end to end against the real Tansu ------------------------------------------------------


async def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 20.0) -> dict[int, list[Any]]:
    """Every message of the topic per partition, in partition order (no group: Tansu's joins are slow)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        assert topic in await consumer.topics()  # also loads its partitions into the metadata
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        got: dict[int, list[Any]] = defaultdict(list)
        deadline = asyncio.get_running_loop().time() + timeout
        while sum(map(len, got.values())) < expected and asyncio.get_running_loop().time() < deadline:
            for tp, messages in (await consumer.getmany(timeout_ms=500)).items():
                got[tp.partition].extend(messages)
        return got
    finally:
        await consumer.stop()


def check_stream(frame: pd.DataFrame, by_partition: dict[int, list[Any]]) -> None:
    """Same clicks, keyed by session, each session in one partition and in stream order there."""
    assert sum(map(len, by_partition.values())) == len(frame)
    sessions_seen: dict[str, list[tuple[Any, float]]] = defaultdict(list)
    partition_of: dict[str, int] = {}
    for partition, messages in by_partition.items():
        for message in messages:
            click = json.loads(message.value)
            assert_valid("click", [click])
            assert set(click) == {"session_id", "item_id", "ts"}
            assert isinstance(click["session_id"], str) and isinstance(click["ts"], float)
            assert isinstance(click["item_id"], int | str) and not isinstance(click["item_id"], bool)
            assert message.key == click["session_id"].encode()
            assert partition_of.setdefault(click["session_id"], partition) == partition
            sessions_seen[click["session_id"]].append((click["item_id"], click["ts"]))
    expected: dict[str, list[tuple[Any, float]]] = defaultdict(list)
    for session, item, ts in zip(frame["session_id"], frame["item_id"], frame["ts"], strict=True):
        expected[session].append((wire_item(item), ts))
    assert sessions_seen == expected  # per session: same clicks, same (stable event-time) order


def test_replay_file_end_to_end(kafka_bootstrap: str, topic_name: str) -> None:
    frame = load_stream(TEST_CSV, limit=400)
    summary = asyncio.run(replay(frame, topic=topic_name, kafka=KafkaConnection(kafka_bootstrap=kafka_bootstrap), progress=False, max_burst=64))
    assert isinstance(summary, ReplaySummary)
    assert summary.clicks == 400 and summary.sessions == frame["session_id"].nunique()
    assert summary.first_ts == frame["ts"].iloc[0] and summary.last_ts == frame["ts"].iloc[-1]
    by_partition = asyncio.run(consume_all(kafka_bootstrap, topic_name, 400))
    assert len(by_partition) > 1  # keyed clicks spread over partitions
    check_stream(frame, by_partition)


def test_replay_click_dicts_from_a_generator(kafka_bootstrap: str, topic_name: str) -> None:
    clicks = ({"session_id": f"syn-{n % 7}", "item_id": n if n % 2 else f"i{n}", "ts": 100.0 + n / 100} for n in range(120))
    summary = asyncio.run(replay(clicks, topic=topic_name, kafka=KafkaConnection(kafka_bootstrap=kafka_bootstrap), pacing=Pacing(rate=5000), progress=False))
    assert (summary.clicks, summary.sessions) == (120, 7)
    by_partition = asyncio.run(consume_all(kafka_bootstrap, topic_name, 120))
    sent = [json.loads(m.value) for ms in by_partition.values() for m in ms]
    assert assert_valid("click", sent) == 120
    items = sorted((click["item_id"] for click in sent), key=str)
    assert items == sorted((n if n % 2 else f"i{n}" for n in range(120)), key=str)


def test_unreachable_broker_is_a_one_line_connection_error() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    with pytest.raises(ConnectionError, match=f"cannot reach Kafka at {bootstrap}") as info:
        asyncio.run(replay(clicks_at(1, 2), topic="clicks", kafka=KafkaConnection(kafka_bootstrap=bootstrap), progress=False))
    assert "\n" not in str(info.value)


# --- command line ---------------------------------------------------------------------------


def test_cli_replays_and_prints_a_summary(kafka_bootstrap: str, topic_name: str) -> None:
    from sessionrec.stream.cli.main import main

    args = ["replay", str(TEST_CSV), "--limit", "250", "--bootstrap", kafka_bootstrap, "--topic", topic_name, "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "replayed 250 clicks of" in result.stdout and repr(topic_name) in result.stdout
    check_stream(load_stream(TEST_CSV, limit=250), asyncio.run(consume_all(kafka_bootstrap, topic_name, 250)))


@pytest.mark.parametrize("case", ["missing column", "no broker"])
def test_cli_bad_input_is_one_error_line(tmp_path: Path, case: str) -> None:
    from sessionrec.stream.cli.main import main

    if case == "missing column":
        csv, bootstrap, expected = write_csv(tmp_path / "c.csv", [(1, 2)], header="event_time,product_id"), "127.0.0.1:1", "missing column(s) user_session"
    else:
        csv, bootstrap, expected = write_csv(tmp_path / "c.csv", [(1, 2, "s")]), f"127.0.0.1:{free_port()}", "cannot reach Kafka"
    result = CliRunner().invoke(main, ["replay", str(csv), "--bootstrap", bootstrap, "--no-progress"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], result.output
