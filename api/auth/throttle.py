"""Sign-in flood protection: failure counters (429 + Retry-After) and a small hashing pool.

- ``LoginThrottle``: failed sign-ins are counted per username and per client address in a
  moving window (the ``limits`` library, so the counters can live in Redis when several API
  processes share the load). Only failures count, so busy offices behind one address are not
  locked out by their own successful sign-ins; a success clears its username's counter.
- ``PasswordCheckPool``: argon2 costs ~64 MiB and tens of milliseconds per check. Checks run on
  a dedicated executor of ``password_hash_concurrency`` threads, never on the shared request
  thread pool, so a flood of sign-ins queues there (a few bytes each) instead of exhausting
  memory or starving every other route. The throttle is consulted again when a queued check
  reaches the front, so a flood is cut off after the first few failures.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from api.errors import ApiError
from store.settings import Settings

T = TypeVar("T")


class LoginThrottle:
    def __init__(self, settings: Settings) -> None:
        window = max(1, int(settings.login_failure_window_s))
        self._limiter = MovingWindowRateLimiter(
            storage_from_string(settings.login_throttle_storage)
        )
        self._per_user = RateLimitItemPerSecond(settings.login_failures_per_user, window)
        self._per_address = RateLimitItemPerSecond(settings.login_failures_per_address, window)

    @staticmethod
    def _user_key(username: str) -> str:
        # Usernames are matched exactly, but "Alice" and "alice" share one budget anyway.
        return username.casefold()

    def check(self, username: str, address: str) -> None:
        """Raise 429 (with Retry-After) when the username or the address used up its failures."""
        waits = [
            self._wait_s(self._per_user, "user", self._user_key(username)),
            self._wait_s(self._per_address, "address", address),
        ]
        wait = max(waits)
        if wait > 0:
            raise ApiError(
                429,
                "too_many_attempts",
                f"too many failed sign-ins; try again in {wait} s",
                headers={"Retry-After": str(wait)},
                retry_after_s=wait,
            )

    def failed(self, username: str, address: str) -> None:
        self._limiter.hit(self._per_user, "user", self._user_key(username))
        self._limiter.hit(self._per_address, "address", address)

    def succeeded(self, username: str) -> None:
        self._limiter.clear(self._per_user, "user", self._user_key(username))

    def _wait_s(self, item: RateLimitItemPerSecond, *key: str) -> int:
        if self._limiter.test(item, *key):
            return 0
        reset = self._limiter.get_window_stats(item, *key).reset_time
        return max(1, math.ceil(reset - time.time()))


class PasswordCheckPool:
    """Runs password checks on its own small executor (see the module docstring)."""

    def __init__(self, concurrency: int) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, concurrency), thread_name_prefix="password-hash"
        )

    async def run(self, fn: Callable[[], T]) -> T:
        return await asyncio.wrap_future(self._executor.submit(fn))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
