"""Local Tansu and Redis: start on free ports, answer, and are gone after stop."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaProducer

from sessionrec.stream.local.servers import Service, ServiceError, free_port, live_services, local_services, start_redis, start_tansu


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def assert_gone(service: Service) -> None:
    assert service.process.poll() is not None
    assert not port_open(service.port)
    assert not service.workdir.exists()
    assert service not in live_services()


async def kafka_partitions(bootstrap: str, topic: str) -> set[int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        return await producer.partitions_for(topic)
    finally:
        await producer.stop()


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_tansu_answers_kafka_and_is_gone_after_stop() -> None:
    tansu = start_tansu()
    try:
        assert tansu.url == f"127.0.0.1:{tansu.port}" and tansu.port != 9092
        assert tansu.running
        assert asyncio.run(kafka_partitions(tansu.url, "services-probe")) == {0, 1, 2, 3}  # auto-created
    finally:
        tansu.stop()
    assert_gone(tansu)
    tansu.stop()  # idempotent


def test_redis_answers_ping_and_is_gone_after_stop() -> None:
    server = start_redis()
    try:
        assert server.url == f"redis://127.0.0.1:{server.port}/0" and server.port != 6379
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
    finally:
        server.stop()
    assert_gone(server)


@pytest.mark.parametrize("start", [start_tansu, start_redis], ids=["tansu", "redis"])
def test_taken_port_is_a_one_line_error(start) -> None:  # noqa: ANN001
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServiceError) as info:
            start(port=port, timeout=10)
    message = str(info.value)
    assert isinstance(info.value, ConnectionError)
    assert "\n" not in message and str(port) in message
    assert "in use" in message.lower()  # the server's own log line is quoted


def test_missing_redis_binary_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceError, match="redis-server not found on PATH"):
        start_redis()


def test_local_services_starts_only_what_is_missing() -> None:
    before = set(live_services())
    with local_services("broker.example:9092", "redis://cache.example:6379/0") as (bootstrap, url):
        assert (bootstrap, url) == ("broker.example:9092", "redis://cache.example:6379/0")
        assert set(live_services()) == before


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_local_services_stop_everything_on_errors(error: type[BaseException]) -> None:
    before = set(live_services())
    with pytest.raises(error), local_services(None, None) as (bootstrap, url):
        started = set(live_services()) - before
        assert sorted(s.name for s in started) == ["redis", "tansu"]
        assert port_open(int(bootstrap.rsplit(":", 1)[1]))
        assert redis.Redis.from_url(url).ping()
        raise error()
    for service in started:
        assert_gone(service)


def process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # a zombie has exited; only its parent's reaper is missing


@pytest.mark.parametrize("ending", ["exit", "SIGKILL"])
def test_servers_never_outlive_the_python_process(ending: str) -> None:
    """Left running by a program that exits (atexit) or is killed (the kernel's parent-death signal)."""
    end = "raise SystemExit(0)" if ending == "exit" else "os.kill(os.getpid(), signal.SIGKILL)"
    script = ("import os, signal\nfrom sessionrec.stream.local.servers import start_redis, start_tansu\n"
              f"t, r = start_tansu(), start_redis()\nprint(t.process.pid, r.process.pid, t.workdir, r.workdir, flush=True)\n{end}\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    fields = done.stdout.split()
    assert len(fields) == 4, done.stderr
    pids, workdirs = [int(pid) for pid in fields[:2]], fields[2:]
    deadline = time.monotonic() + 10
    while not all(map(process_gone, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(map(process_gone, pids))
    for workdir in workdirs:  # a killed parent cannot clean up its temp folders
        shutil.rmtree(workdir, ignore_errors=True)


def test_a_worker_process_never_outlives_the_python_process_that_started_it(kafka_bootstrap: str, redis_url: str, small_model: Path) -> None:
    """The harness's workers (demo, benches, tests) get the parent-death signal too: a killed bench leaves no worker behind."""
    script = ("import os, signal, time\nfrom sessionrec.stream.local.harness import WorkerProcess\nfrom sessionrec.stream.settings import Settings\n"
              f"w = WorkerProcess(Settings(kafka_bootstrap={kafka_bootstrap!r}, redis_url={redis_url!r}, namespace='orphan', "
              f"model_dir={str(small_model)!r}, web_port=0))\n"
              "time.sleep(4)\nprint(w.process.pid, w.process.poll() is None, flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    pid, alive = done.stdout.split()
    assert alive == "True", done.stderr  # it ran until its parent died
    deadline = time.monotonic() + 15
    while not process_gone(int(pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process_gone(int(pid))
