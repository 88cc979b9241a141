"""Polling for what a background thread (a watcher, a debounce timer) does, without fixed sleeps."""

from __future__ import annotations

import time


def wait_for(condition, timeout: float = 10.0) -> bool:
    """True as soon as `condition()` holds, else its value once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
