"""The sweep's budget (how much each audit pass re-checks) and its stats-per-second ceiling."""

from __future__ import annotations

import threading
import time

from fustor_source_fs.sweepbudget import Pacer, SweepBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_pass_owes_nothing() -> None:
    budget = SweepBudget(3600, Clock())
    assert budget.start_pass(1_000_000) == (0.0, 0.0)


def test_each_pass_owes_its_share_of_the_period() -> None:
    clock = Clock()
    budget = SweepBudget(3600, clock)
    budget.start_pass(3600)
    budget.end_pass(0, 0, 3600)
    clock.now += 600  # one audit interval later
    credit, max_sec = budget.start_pass(3600)
    assert credit == 600  # a sixth of the round
    assert max_sec == 600  # at most the pause since the last pass
    budget.end_pass(590, 590, 3600)
    clock.now += 600
    credit, _ = budget.start_pass(3600)
    assert credit == 610  # what was not paid is carried over


def test_the_debt_never_exceeds_one_round() -> None:
    clock = Clock()
    budget = SweepBudget(10, clock)
    budget.start_pass(100)
    budget.end_pass(0, 0, 100)
    clock.now += 1_000
    assert budget.start_pass(100)[0] == 100
    assert budget.start_pass(100)[1] >= 1.0  # a pass may always take a second


def test_rounds_and_the_period_achieved() -> None:
    clock = Clock()
    budget = SweepBudget(100, clock)
    budget.start_pass(10)
    budget.end_pass(0, 0, 10)
    assert budget.period_achieved(10) is None
    clock.now += 30
    budget.start_pass(10)
    budget.end_pass(3, 3, 10)
    assert budget.progress(10) == 0.3
    assert budget.period_achieved(10) == 100.0  # projected: 3 of 10 files in 30 s
    clock.now += 90
    budget.start_pass(10)
    budget.end_pass(7, 7, 10)
    assert budget.rounds == 1
    assert budget.period_achieved(10) == 120.0  # the ceiling or the audits made it longer
    assert budget.progress(10) == 0.0


def test_the_pacer_holds_the_ceiling_across_threads() -> None:
    pacer = Pacer(2000)
    stop = threading.Event()
    started = time.monotonic()

    def work() -> None:
        for _ in range(25):
            assert pacer.take(16, stop)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - started
    # 1600 stats at 2000/s: 0.8 s, less the 0.1 s burst allowed at the start.
    assert took >= 0.65, took
    assert pacer.taken == 1600


def test_a_stopped_pacer_gives_up_at_once() -> None:
    pacer = Pacer(1)
    stop = threading.Event()
    stop.set()
    started = time.monotonic()
    assert pacer.take(100, stop) is False
    assert time.monotonic() - started < 0.5
