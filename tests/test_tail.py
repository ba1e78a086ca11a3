"""`sessionrec tail`: recommendations written to a real (Tansu) topic come out as readable lines."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from click.testing import CliRunner

from sessionrec.model.movielens import movie_titles
from sessionrec.replay.kafka.clients import start_producer
from sessionrec.replay.kafka.sender import BatchSender
from sessionrec.stream.cli.main import Cli
from sessionrec.stream.cli.watching import tail
from sessionrec.stream.local.servers import free_port
from sessionrec.stream.settings import Settings
from sessionrec.stream.watch.tail import follow, format_line


def _recommendation(i: int, click_time: float) -> dict:
    return {"session_id": f"s{i % 3}", "ts": 1600000000.0 + i, "item_id": str(100 + i), "item_ids": [str(n) for n in range(1, 8)],
            "model_version": "v1", "partition": 0, "offset": i, "click_time": click_time}


def _send(bootstrap: str, topic: str, records: list[dict]) -> None:
    async def go() -> None:
        producer = await start_producer(Settings(kafka_bootstrap=bootstrap), linger_ms=0)
        try:
            sender = await BatchSender.create(producer, topic)
            await sender.send((r["session_id"].encode(), json.dumps(r).encode()) for r in records)
            await sender.flush()
        finally:
            await producer.stop()

    asyncio.run(go())


def test_from_beginning_prints_one_line_each(kafka_bootstrap: str, topic_name: str, tmp_path: Path) -> None:
    records = [_recommendation(i, time.time()) for i in range(6)]
    _send(kafka_bootstrap, topic_name, records)
    movies = tmp_path / "movies.csv"
    movies.write_text('movieId,title,genres\n1,Toy Story (1995),Animation\n101,"Heat, the long one (1995)",Crime\n')
    result = CliRunner().invoke(tail, ["--from-beginning", "--limit", "4", "--topic", topic_name, "--bootstrap", kafka_bootstrap,
                                       "--titles", str(movies)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 4
    sessions = {f"s{i}" for i in range(3)}
    for line in lines:
        assert "session s" in line and line.split("session ")[1].split()[0] in sessions
        assert "→  1 Toy Story (1995) | 2 | 3 | 4 | 5  model v1  latency" in line and line.endswith(" ms")
        assert " 6 " not in line  # top 5 only
    assert any("clicked 101 Heat, the long one (1995)" in line for line in lines)


def test_json_prints_raw_records(kafka_bootstrap: str, topic_name: str) -> None:
    records = [_recommendation(i, time.time()) for i in range(3)]
    _send(kafka_bootstrap, topic_name, records)
    result = CliRunner().invoke(tail, ["--from-beginning", "--limit", "3", "--json", "--topic", topic_name,
                                       "--bootstrap", kafka_bootstrap])
    assert result.exit_code == 0, result.output
    got = sorted((json.loads(line) for line in result.output.strip().splitlines()), key=lambda r: r["offset"])
    assert got == records


def test_from_now_skips_older_records(kafka_bootstrap: str, topic_name: str) -> None:
    """Records produced before the start time are skipped, later ones shown (no broker end offsets involved)."""

    async def go() -> list[int]:
        await asyncio.to_thread(_send, kafka_bootstrap, topic_name, [_recommendation(i, time.time()) for i in range(5)])
        await asyncio.sleep(0.01)
        start_ms = int(time.time() * 1000) + 1
        await asyncio.sleep(0.01)
        await asyncio.to_thread(_send, kafka_bootstrap, topic_name, [_recommendation(i, time.time()) for i in range(100, 102)])
        seen = []
        stream = follow(Settings(kafka_bootstrap=kafka_bootstrap), topic_name, from_beginning=False, since_ms=start_ms)
        async for message, _received in stream:
            seen.append(json.loads(message.value)["offset"])
            if len(seen) == 2:
                break
        await stream.aclose()
        return seen

    assert sorted(asyncio.run(go())) == [100, 101]


def test_format_line_without_optional_fields() -> None:
    line = format_line({"session_id": "abc", "ts": 0, "item_ids": ["9"], "model_version": "v2"}, received=10.0)
    assert line == "1970-01-01 00:00:00  session abc  →  9  model v2  latency – ms"


def test_titles_from_folder_or_bad_file(tmp_path: Path) -> None:
    (tmp_path / "movies.csv").write_text("movieId,title\n7,Sabrina (1995)\n")
    assert movie_titles(tmp_path) == {"7": "Sabrina (1995)"}
    other = tmp_path / "films.csv"
    other.write_text("id,name\n7,x\n")
    result = CliRunner().invoke(Cli(commands={"tail": tail}), ["tail", "--titles", str(other), "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 1 and result.output.strip() == f"Error: {other}: expected columns movieId and title"


def test_unreachable_kafka_is_one_line() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    result = CliRunner().invoke(Cli(commands={"tail": tail}), ["tail", "--bootstrap", bootstrap])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: cannot reach Kafka at {bootstrap}; is a broker running there?"
