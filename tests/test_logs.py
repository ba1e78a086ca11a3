"""Logging of the long-running commands: the level and format the settings give, text or one JSON object per line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import pytest

from sessionrec.stream.logs import setup_logging
from sessionrec.stream.settings import Settings, SettingsError


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_json_lines_carry_level_logger_message_and_traceback(capsys) -> None:
    setup_logging(Settings(log_format="json"), "info")
    logging.getLogger("sessionrec.probe").info("served %d clicks", 3)
    try:
        raise ValueError("broken")
    except ValueError:
        logging.getLogger("sessionrec.probe").exception("a batch failed")
    captured = capsys.readouterr()
    first, second = (json.loads(line) for line in captured.err.splitlines())
    assert captured.out == ""  # stdout stays the command's output
    assert {k: first[k] for k in ("level", "logger", "message")} == {"level": "info", "logger": "sessionrec.probe", "message": "served 3 clicks"}
    assert first["time"].endswith("+00:00") and "error" not in first
    assert second["level"] == "error" and "ValueError: broken" in second["error"]


def test_the_level_is_the_commands_unless_the_settings_say_otherwise(capsys) -> None:
    setup_logging(Settings(), "warning")
    logging.getLogger("sessionrec.probe").info("hidden")
    logging.getLogger("sessionrec.probe").warning("shown")
    logging.getLogger("aiokafka").warning("a library's warning")
    setup_logging(Settings(log_level="debug"), "warning")
    logging.getLogger("sessionrec.probe").debug("now shown")
    logging.getLogger("aiokafka").debug("a library's detail")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == ["shown", "a library's warning", "now shown", "a library's detail"]
    assert " WARNING sessionrec.probe: " in lines[0]


def test_chatty_libraries_say_only_warnings_at_info(capsys) -> None:
    setup_logging(Settings(), "info")
    logging.getLogger("aiokafka.consumer").info("joined the group")
    assert capsys.readouterr().err == ""


def test_bad_log_settings_are_named() -> None:
    with pytest.raises(SettingsError, match="log_format must be text or json"):
        Settings(log_format="yaml")
    with pytest.raises(SettingsError, match="log_level must be one of"):
        Settings.from_env({"SESSIONREC_LOG_LEVEL": "loud"})


def test_the_trainer_logs_json_lines(kafka_bootstrap, redis_url, tmp_path, topic_name) -> None:
    """The trainer as a process, its format and level from its options."""
    settings = Settings(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, redis_prefix=topic_name, recs_topic=topic_name, app_id=topic_name)
    env = {**os.environ, **settings.to_env()}
    command = [sys.executable, "-m", "sessionrec.stream.cli", "trainer", "--log-format", "json", "--loglevel", "info"]
    with (tmp_path / "trainer.log").open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while "learning from" not in (tmp_path / "trainer.log").read_text() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(30)
    lines = [json.loads(line) for line in (tmp_path / "trainer.log").read_text().splitlines()]
    assert any(line["message"] == f"learning from {topic_name} (group {topic_name}-trainer)" and line["level"] == "info" for line in lines)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)


@pytest.mark.parametrize("name", ["worker", "trainer", "api"])
def test_every_long_running_command_takes_the_log_options(name: str) -> None:
    from sessionrec.stream.cli.main import main

    command = main.get_command(None, name)
    options = {option for param in command.params for option in param.opts}
    assert {"--loglevel", "--log-format"} <= options
