"""`sessionrec up` / `down`: servers that outlive the command, recorded, and stopped exactly."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from sessionrec.stream.local.up import Server, Servers, down
from sessionrec.stream.settings import Settings
from tests.test_services import kafka_partitions, port_open, process_gone


def sessionrec(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SESSIONREC_SERVERS_FILE": str(state)}
    return subprocess.run([sys.executable, "-m", "sessionrec.stream.cli", *args], env=env, capture_output=True, text=True, timeout=120)


def exported(stdout: str) -> dict[str, str]:
    """What `eval "$(sessionrec up)"` sets, read by a shell."""
    shell = subprocess.run(["bash", "-c", f'{stdout}\nenv -0'], capture_output=True, text=True, check=True, env={})
    return {k: v for k, _, v in (line.partition("=") for line in shell.stdout.split("\0")) if k.startswith("SESSIONREC_")}


def test_up_then_down(tmp_path: Path) -> None:
    state = tmp_path / "servers.json"
    started = sessionrec("up", state=state)
    assert started.returncode == 0, started.stderr
    env = exported(started.stdout)
    assert set(env) == {"SESSIONREC_KAFKA_BOOTSTRAP", "SESSIONREC_REDIS_URL"}
    recorded = Servers.read(state)
    try:
        assert recorded is not None and recorded.exports == env and "sessionrec down" in started.stderr
        settings = Settings.from_env(env)  # the command has exited; its servers answer
        assert redis.Redis.from_url(settings.redis_url).ping()
        assert asyncio.run(kafka_partitions(settings.kafka_bootstrap, "up-probe")) == {0, 1, 2, 3}
        again = sessionrec("up", state=state)
        assert again.returncode == 1 and again.stdout == ""
        assert again.stderr.count("\n") == 1 and "already up" in again.stderr and str(recorded.tansu.pid) in again.stderr
    finally:
        stopped = sessionrec("down", state=state)
    assert stopped.returncode == 0 and stopped.stderr.count("stopped ") == 2
    for server in (recorded.tansu, recorded.redis):
        assert process_gone(server.pid) and not port_open(server.port) and not Path(server.workdir).exists()
    assert not state.exists()
    nothing = sessionrec("down", state=state)
    assert nothing.returncode == 0 and "no local servers are up" in nothing.stderr


def test_down_never_signals_a_process_that_merely_has_a_recorded_pid(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        fake = Server("redis", bystander.pid, 6399, "redis://127.0.0.1:6399/0", "/usr/bin/redis-server", str(tmp_path / "gone"))
        Servers(fake, fake).write(tmp_path / "servers.json")
        assert [running for _, running in down(tmp_path / "servers.json")] == [False, False]
        assert bystander.poll() is None  # still sleeping
        assert not (tmp_path / "servers.json").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_a_stale_record_does_not_block_up_and_a_broken_one_is_one_line(tmp_path: Path) -> None:
    state = tmp_path / "servers.json"
    dead = Server("tansu", 2**22 + 1, 1, "127.0.0.1:1", "/nonexistent/tansu", str(tmp_path / "w"))
    Servers(dead, dead).write(state)
    started = sessionrec("up", state=state)
    try:
        assert started.returncode == 0, started.stderr
        assert json.loads(state.read_text())["tansu"]["pid"] != dead.pid
    finally:
        assert sessionrec("down", state=state).returncode == 0
    state.write_text("{not json")
    broken = sessionrec("down", state=state)
    assert broken.returncode == 1 and broken.stderr.count("\n") == 1 and "is not a record of local servers" in broken.stderr

