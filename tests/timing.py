"""Timing helpers of the hostile-input checks: a watchdog that stops a hung call, and CPU time
that other load on a shared machine does not inflate (property tests, parser tests, fuzz script)."""

from __future__ import annotations

import gc
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Hang(BaseException):
    """Raised in a call still running after its watchdog's time (by SIGALRM; pure-Python loops are
    interrupted). A BaseException, so a parser's own `except Exception` does not swallow it."""


@contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    def fire(_sig: int, _frame: object) -> None:
        raise Hang(f"still running after {seconds:.0f}s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def best_cpu(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best CPU time of `repeat` runs (this process's), the cyclic garbage collector off: its full
    passes come more often as a run allocates more, which is not the code's complexity."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.process_time()
            fn()
            best = min(best, time.process_time() - t0)
    finally:
        gc.enable()
    return best
