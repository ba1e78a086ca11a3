"""Settings are checked up front: a bad value is one line naming it, an unknown variable is warned about, a namespace isolates."""

from __future__ import annotations

import logging
from dataclasses import fields, replace

import pytest

from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.settings import Settings, SettingsError, redacted


@pytest.mark.parametrize(("env", "words"), [
    ({"SESSIONREC_METRICS_BUCKET_S": "0"}, "metrics_bucket_s must be at least 1 (got 0)"),
    ({"SESSIONREC_REDIS_URL": "http://x"}, "redis_url 'http://x' is not a Redis URL"),
    ({"SESSIONREC_BATCH_SIZE": "many"}, "SESSIONREC_BATCH_SIZE='many' is not a valid int"),
    ({"SESSIONREC_TRAINER_HOLDOUT": "1.5"}, "trainer_holdout must lie between 0 and 1"),
    ({"SESSIONREC_LOG_FORMAT": "xml"}, "log_format must be text or json"),
    ({"SESSIONREC_NAMESPACE": "two words"}, "namespace must be 1-100 of"),
])
def test_a_bad_setting_is_one_line_naming_it(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_password_in_a_bad_redis_url_is_not_shown() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"SESSIONREC_REDIS_URL": "http://user:s3cret@x"})
    assert "s3cret" not in str(info.value) and "user:***@x" in str(info.value)


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
    ("rediss://app:s3cret@host/1", "rediss://app:***@host/1"),
    ("redis://host:6379/0", "redis://host:6379/0"),
])
def test_redis_urls_are_printed_without_their_password(url: str, shown: str) -> None:
    assert redacted(url) == shown == Settings(redis_url=url).redis_shown


def test_an_unknown_variable_is_warned_about_with_the_likely_name(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings = Settings.from_env({"SESSIONREC_BOOTSTRAP": "broker:9092", "SESSIONREC_BATCH_SIZE": "64"})
    assert settings.batch_size == 64
    assert "SESSIONREC_BOOTSTRAP is not a sessionrec setting" in caplog.text and "SESSIONREC_KAFKA_BOOTSTRAP" in caplog.text


def test_optional_overrides_read_empty_as_unset() -> None:
    assert Settings.from_env({"SESSIONREC_HISTORY_LEN": ""}).history_len is None
    assert Settings.from_env({"SESSIONREC_HISTORY_LEN": "20"}).serving_overrides() == {"history_len": 20}


def test_a_child_process_reads_back_the_same_settings() -> None:
    settings = Settings(namespace="acme", batch_size=64, history_len=20, learn_online=False, redis_url="redis://:pw@h:1/0")
    assert Settings.from_env(settings.to_env()) == settings


def test_a_namespace_separates_every_kafka_name_and_redis_key() -> None:
    """Two deployments on one broker and one Redis share no topic, consumer group or key (the trainer's group follows app_id)."""
    a, b = Settings(namespace="a"), Settings(namespace="b")
    names = [f.name for f in fields(Settings) if f.name.endswith("_topic")] + ["app_id", "redis_prefix", "consumer_group"]
    for name in names:
        assert getattr(a, name).startswith("a.") and getattr(b, name).startswith("b."), name
        assert getattr(a, name).removeprefix("a.") == getattr(b, name).removeprefix("b.") == getattr(Settings(), name), name
    keys_a, keys_b = Keys(a.redis_prefix), Keys(b.redis_prefix)
    assert keys_a.session("s", 0) != keys_b.session("s", 0) and keys_a.model_current != keys_b.model_current
    assert keys_a.vocab_index != keys_b.vocab_index and keys_a.learning_feed(0) != keys_b.learning_feed(0)


def test_a_name_set_by_hand_wins_over_the_namespace() -> None:
    settings = Settings(namespace="acme", clicks_topic="shop-clicks")
    assert settings.clicks_topic == "shop-clicks" and settings.recs_topic == "acme.recommendations"
    assert replace(settings, batch_size=8).clicks_topic == "shop-clicks"  # a copy keeps its names


def test_a_fresh_namespace_resets_every_name() -> None:
    settings = Settings(namespace="acme", clicks_topic="shop-clicks").in_namespace("run-1")
    assert (settings.clicks_topic, settings.dlq_topic, settings.redis_prefix) == ("run-1.clicks", "run-1.clicks.dlq", "run-1.sessionrec")
