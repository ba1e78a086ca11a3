"""Readiness: a worker that is starting, stalled with clicks waiting, or skipping most clicks is not ready, and says why."""

from __future__ import annotations

from sessionrec.stream.watch.readiness import MIN_CLICKS, WINDOW_S, Readiness


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def serving(**options: float) -> tuple[Readiness, Clock]:
    clock = Clock()
    readiness = Readiness(clock=clock, **options)
    readiness.serving()
    return readiness, clock


def test_not_ready_until_serving() -> None:
    readiness = Readiness(clock=Clock())
    assert readiness.problems()[0].startswith("starting")
    readiness.serving()
    assert readiness.problems() == []


def test_stalled_only_while_clicks_wait() -> None:
    readiness, clock = serving(stall_s=30)
    readiness.batch(100, 0)
    clock.now += 31
    assert readiness.problems() == []  # idle: nothing waits
    readiness.lag(250)
    assert readiness.problems() == ["stalled: no micro-batch finished for 31 s while 250 clicks wait"]
    readiness.batch(250, 0)
    assert readiness.problems() == []
    clock.now += 29
    assert readiness.problems() == []  # waiting, but a batch finished within stall_s


def test_a_worker_that_never_finished_a_batch_counts_from_when_it_began_serving() -> None:
    readiness, clock = serving(stall_s=10)
    readiness.lag(5)
    clock.now += 11
    assert readiness.problems()[0].startswith("stalled: no micro-batch finished for 11 s")


def test_skipping_most_clicks_is_not_ready_until_it_passes() -> None:
    readiness, clock = serving(max_duplicate_share=0.5)
    readiness.batch(MIN_CLICKS - 1, MIN_CLICKS - 1)
    assert readiness.problems() == []  # too few clicks to judge
    readiness.batch(101, 60)
    assert readiness.problems() == [f"skipping: {MIN_CLICKS + 59:,} of the last {MIN_CLICKS + 100:,} clicks were taken as already applied "
                                    "(offsets reset, or a log that started over unnoticed)"]
    clock.now += WINDOW_S + 1
    readiness.batch(300, 10)  # a redelivery burst long gone, the stream flows
    assert readiness.problems() == []


def test_a_redelivery_after_a_restart_is_normal() -> None:
    readiness, _ = serving()
    readiness.batch(256, 256)  # the clicks after the last committed offset, already applied before the crash
    for _ in range(4):
        readiness.batch(256, 0)
    assert readiness.problems() == []
