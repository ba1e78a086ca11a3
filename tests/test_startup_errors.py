"""A command that cannot start says why in one line, never a traceback, and never prints a password."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from sessionrec.stream.local.servers import free_port

SECRET = "s3cret-pw"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONREC_")}
    return subprocess.run([sys.executable, "-m", "sessionrec.stream.cli", *args], capture_output=True, text=True, timeout=timeout,
                          env={**clean, **(env or {})})


def one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> str:
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "Traceback" not in out and SECRET not in out, out
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, out
    for word in words:
        assert word in errors[0], out
    return errors[0]


@pytest.fixture(scope="module")
def damaged(small_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Copies of a good checkpoint: weights cut short, and a vocabulary of two items."""
    root = tmp_path_factory.mktemp("damaged")
    truncated, short_vocab = root / "truncated", root / "short-vocab"
    for folder in (truncated, short_vocab):
        shutil.copytree(small_model, folder)
    with (truncated / "model.safetensors").open("r+b") as f:
        f.truncate(1000)
    (short_vocab / "vocab.json").write_text('["a", "b"]')
    return {"truncated": truncated, "short_vocab": short_vocab}


def test_worker_with_redis_unreachable(small_model: Path) -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    line = one_line_error(run_cli("worker", "--redis-url", url, env={"SESSIONREC_MODEL_DIR": str(small_model)}), "cannot reach Redis")
    assert ":***@127.0.0.1" in line


def test_worker_with_kafka_unreachable(redis_url: str, small_model: Path) -> None:
    env = {"SESSIONREC_REDIS_URL": redis_url, "SESSIONREC_NAMESPACE": f"start-{uuid.uuid4().hex[:6]}", "SESSIONREC_MODEL_DIR": str(small_model),
           "SESSIONREC_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "SESSIONREC_WEB_PORT": "0"}
    one_line_error(run_cli("worker", env=env), "cannot reach Kafka")


@pytest.mark.parametrize(("model", "words"), [
    ("missing", ("not a checkpoint", "sessionrec train")),
    ("truncated", ("damaged checkpoint",)),
    ("short_vocab", ("damaged checkpoint", "the vocabulary holds 2 items")),
])
def test_worker_and_evaluate_refuse_a_bad_checkpoint(redis_url: str, damaged: dict[str, Path], tmp_path: Path, model: str,
                                                     words: tuple[str, ...]) -> None:
    folder = damaged.get(model, tmp_path / "nothing-here")
    env = {"SESSIONREC_REDIS_URL": redis_url, "SESSIONREC_NAMESPACE": f"start-{uuid.uuid4().hex[:6]}", "SESSIONREC_MODEL_DIR": str(folder)}
    one_line_error(run_cli("worker", env=env), str(folder), *words)
    one_line_error(run_cli("evaluate", "--model", str(folder)), *words)


@pytest.mark.parametrize(("device", "words"), [("tpu", ("'tpu' is not a device",)), ("cuda:7", ("no such CUDA device",))])
def test_worker_with_a_device_it_cannot_use(small_model: Path, device: str, words: tuple[str, ...]) -> None:
    one_line_error(run_cli("worker", env={"SESSIONREC_DEVICE": device, "SESSIONREC_MODEL_DIR": str(small_model)}), *words)


def test_a_setting_that_cannot_be_used(small_model: Path) -> None:
    one_line_error(run_cli("worker", env={"SESSIONREC_METRICS_BUCKET_S": "0"}), "metrics_bucket_s must be at least 1")


def test_monitor_and_demo_never_print_the_password() -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    one_line_error(run_cli("monitor", "--redis-url", url), "cannot reach Redis", ":***@")
    demo = run_cli("demo", "--redis-url", url, "--limit", "10", "--dashboard-port", "0")
    one_line_error(demo, "cannot reach Redis", ":***@")


def test_demo_rejects_a_speed_it_cannot_read() -> None:
    done = run_cli("demo", "--speed", "fast")
    assert done.returncode == 2 and "Invalid value for '--speed'" in done.stderr and "Traceback" not in done.stderr
