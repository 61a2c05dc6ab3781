"""How fast this machine is right now, printed beside benchmark figures.

This VM's speed moves ~3× within a day (a noisy host): the same pure-Python loop took 1.42 s
and 0.45 s hours apart. A figure quoted without it cannot be compared with another day's.
"""

from __future__ import annotations

import time


def python_speed() -> float:
    """Seconds for 10M pure-Python additions."""
    started, total = time.perf_counter(), 0
    for k in range(10_000_000):
        total += k
    return time.perf_counter() - started


def speed_line() -> str:
    return f"10M Python additions take {python_speed():.2f} s on this machine now"
