"""`sessionrec demo` on given servers: it names its topics and key prefix, and monitor and tail find the run there."""

from __future__ import annotations

import json
import re
import shlex

from click.testing import CliRunner

from sessionrec.stream.cli.main import main

CLICKS = 150


def test_monitor_and_tail_follow_the_commands_the_demo_prints(kafka_bootstrap, redis_url, small_model) -> None:
    runner = CliRunner()
    demo = runner.invoke(main, ["demo", "--model", str(small_model), "--limit", str(CLICKS), "--bootstrap", kafka_bootstrap, "--redis-url", redis_url])
    assert demo.exit_code == 0, demo.output
    lines = demo.output.splitlines()
    topics = next(line for line in lines if line.startswith("topics "))
    assert re.match(r"topics demo-[0-9a-f]{6}\.clicks", topics)  # on shared servers a demo never mixes with other runs
    monitor = shlex.split(next(line for line in lines if "sessionrec monitor" in line).split("sessionrec ", 1)[1])
    tail = shlex.split(next(line for line in lines if "sessionrec tail" in line).split("sessionrec ", 1)[1])
    watched = runner.invoke(main, [*monitor, "--json"])
    assert watched.exit_code == 0, watched.output
    assert json.loads(watched.output)["total"]["clicks"] == CLICKS
    followed = runner.invoke(main, [*tail, "--from-beginning", "--limit", "3", "--json"])
    assert followed.exit_code == 0, followed.output
    recs = [json.loads(line) for line in followed.output.splitlines() if line.startswith("{")]
    assert len(recs) == 3 and all(rec["item_ids"] for rec in recs)
    assert tail[tail.index("--topic") + 1] in topics and monitor[monitor.index("--redis-prefix") + 1] in topics
