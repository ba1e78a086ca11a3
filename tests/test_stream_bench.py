"""`sessionrec bench stream` on small figures: every phase runs, and the sizing is measured on the throughput phase's clicks."""

from __future__ import annotations

import json

from click.testing import CliRunner

from sessionrec.replay.source import frame_records
from sessionrec.stream.cli.main import main
from sessionrec.stream.local.bench import synthetic_clicks


def test_bench_stream_reports_throughput_latency_and_what_a_click_costs(kafka_bootstrap, redis_url, small_model, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SESSIONREC_MODEL_DIR", str(small_model))
    out = tmp_path / "stream.json"
    args = ["bench", "stream", "--bootstrap", kafka_bootstrap, "--redis-url", redis_url, "--clicks", "1000", "--sessions", "50", "--items", "300",
            "--reference-clicks", "100", "--rate", "200", "--latency-seconds", "1", "--json", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["clicks"] == 1000 and record["reference_clicks"] == 100 and record["latency"][0]["clicks"] == 200
    assert record["clicks_per_s"] > 0 and record["reference_clicks_per_s"] > 0 and record["latency_p50_ms"] <= record["latency_p99_ms"]
    sizing = record["sizing"]
    assert sizing["clicks"] == 1000 and record["clicks_per_worker_core_s"] > 0 and record["clicks_per_redis_core_s"] > 0
    assert sizing["redis_commands_per_click"] > 0 and sizing["redis_net_bytes_per_click"] > 0
    assert sizing["redis_memory_per_session"] > 0  # found the sessions under the phase's own prefix
    clicks = synthetic_clicks(1200, 50, 300, [])[200:]
    click_bytes = sum(len(key) + len(value) for key, value, _ in frame_records(clicks)) / len(clicks)
    assert sizing["broker_bytes_per_click"] > click_bytes + 100  # the click and a recommendation of several items
