"""`sessionrec monitor`: counters written to a real Redis as the workers write them, read back as rates."""

from __future__ import annotations

import json
import time
import uuid

import click
import redis
from click.testing import CliRunner

from sessionrec.stream.cli.main import Cli
from sessionrec.stream.cli.watching import monitor
from sessionrec.stream.local.servers import free_port
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.metrics import RR_SCALE, Counts
from sessionrec.stream.watch.monitor import metrics_table


def _cli() -> click.Group:
    """The monitor under the project's group class, which turns ConnectionError into one line."""
    return Cli(name="sessionrec", commands={"monitor": monitor})


def _write(url: str, prefix: str, bucket_s: int = 10) -> tuple[Counts, Counts]:
    """Counters as stream.redis.commit leaves them: a running total and per-bucket hashes per partition (old ones in 0, new in 1)."""
    keys = Keys(prefix)
    now = time.time()
    old = Counts(clicks=900, scored=800, hit1=80, hit5=240, hit20=400, rr20=160 * RR_SCALE, dead_letters=5, duplicates=2)
    new = Counts(clicks=100, scored=90, hit1=30, hit5=45, hit20=60, rr20=40 * RR_SCALE, dead_letters=1, duplicates=0)
    total = Counts()
    total.add(old)
    total.add(new)
    client = redis.Redis.from_url(url)
    try:
        client.hset(keys.metrics_total(0), mapping=vars(old))
        client.hset(keys.metrics_total(1), mapping=vars(new))
        client.hset(keys.metrics_bucket(int((now - 3600) // bucket_s) * bucket_s, 0), mapping=vars(old))  # an hour ago
        client.hset(keys.metrics_bucket(int(now // bucket_s) * bucket_s, 1), mapping=vars(new))
        client.set(keys.model_current, "v42")
    finally:
        client.close()
    return total, new


def test_once_json_reports_totals_and_rates(redis_url: str) -> None:
    prefix = f"t-monitor-{uuid.uuid4().hex[:8]}"
    total, recent = _write(redis_url, prefix)
    result = CliRunner().invoke(_cli(), ["monitor", "--once", "--json", "--redis-url", redis_url, "--redis-prefix", prefix])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["model_version"] == "v42"
    run, last = report["total"], report["last_minute"]
    assert run["clicks"] == 1000 and run["scored"] == 890 and run["dead_letters"] == 6 and run["duplicates"] == 2
    assert run["hr@1"] == 110 / 890 and run["hr@5"] == 285 / 890 and run["hr@20"] == 460 / 890
    assert abs(run["mrr@20"] - 200 / 890) < 1e-12
    assert last["clicks"] == 100 and last["scored"] == 90
    assert last["hr@1"] == 30 / 90 and last["hr@20"] == 60 / 90 and abs(last["mrr@20"] - 40 / 90) < 1e-12
    assert report["events_per_s"] > 0


def test_once_table_and_no_data_yet(redis_url: str) -> None:
    prefix = f"t-monitor-empty-{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(_cli(), ["monitor", "--once", "--redis-url", redis_url, "--redis-prefix", prefix])
    assert result.exit_code == 0, result.output
    assert "HR@20" in result.output and "none yet" in result.output
    result = CliRunner().invoke(_cli(), ["monitor", "--json", "--redis-url", redis_url, "--redis-prefix", prefix])
    report = json.loads(result.output)
    assert report["total"]["clicks"] == 0 and report["total"]["hr@1"] is None and report["model_version"] is None


def test_unreachable_redis_is_one_line() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = CliRunner().invoke(_cli(), ["monitor", "--once", "--redis-url", url])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot reach Redis at " + url), result.output


def test_table_is_reusable() -> None:
    from rich.console import Console

    total = Counts(clicks=10, scored=4, hit1=1, hit5=2, hit20=3, rr20=RR_SCALE)
    console = Console(width=120, record=True)
    console.print(metrics_table(total, Counts(), 12.5, "v1"))
    text = console.export_text()
    assert "0.2500" in text and "12.5" in text and "v1" in text


def test_rate_meter_spreads_a_burst_over_its_window() -> None:
    from sessionrec.stream.watch.monitor import RateMeter

    meter = RateMeter(2.0, at=0.0, count=0)
    assert meter.update(1.0, 100) == 100.0
    assert meter.update(1.001, 2_100) == 2_100 / 1.001  # not 2,000 clicks in one millisecond
    assert meter.update(5.0, 2_100) == 0.0  # older samples leave once a newer one is window_s old
    assert meter.update(6.0, 2_600) == 500 / (6.0 - 1.001)  # from the newest sample at least 2 s old
    assert meter.update(6.0, 2_600) == 500 / (6.0 - 1.001)  # a repeated sample changes nothing


def test_the_dashboard_says_in_one_line_what_stops_it(redis_url: str) -> None:
    import socket

    from sessionrec.stream.cli.watching import dashboard

    cli = Cli(name="sessionrec", commands={"dashboard": dashboard})
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = CliRunner().invoke(cli, ["dashboard", "--redis-url", url])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith(f"Error: cannot reach Redis at {url}"), result.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["dashboard", "--redis-url", redis_url, "--port", str(port)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith(f"Error: cannot serve the dashboard on 127.0.0.1:{port}"), result.output
