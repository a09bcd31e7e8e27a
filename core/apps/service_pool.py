"""A bounded pool for the service's model work: a fixed number of worker threads and a bounded
queue in front of them.

A request that finds every worker busy and the queue full is refused at once with
:class:`ServiceBusyError` (503 + ``Retry-After``) instead of piling up; one that waits and runs
longer than the timeout gets :class:`RequestTimeoutError` (504).  A timed-out job that already
started keeps its worker until it ends (threads cannot be interrupted), so the pool never runs
more than ``workers`` jobs at once.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from facepipe.apps.service_errors import RequestTimeoutError, ServiceBusyError
from facepipe.errors import ConfigError

T = TypeVar("T")

#: default request timeout (queue wait + model work), seconds
DEFAULT_TIMEOUT_S = 60.0


def default_workers() -> int:
    """One worker per CPU core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class WorkerPool:
    """``workers`` threads, at most ``queue`` jobs waiting, ``timeout_s`` per request."""

    def __init__(self, workers: int | None = None, queue: int | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        workers = default_workers() if workers is None else workers
        queue = 8 * workers if queue is None else queue
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"service workers must be an integer >= 1, got {workers!r}")
        if isinstance(queue, bool) or not isinstance(queue, int) or queue < 0:
            raise ConfigError(f"service queue must be an integer >= 0, got {queue!r}")
        if not isinstance(timeout_s, (int, float)) or not math.isfinite(timeout_s) or timeout_s <= 0:
            raise ConfigError(f"service timeout must be a number of seconds > 0, got {timeout_s!r}")
        self.workers, self.queue, self.timeout_s = workers, queue, float(timeout_s)
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._busy = 0
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._mean_job_s = 1.0  # moving average, for Retry-After

    @property
    def busy(self) -> int:
        """Jobs running or waiting now."""
        return self._busy

    def retry_after(self) -> int:
        """Seconds a refused client should wait: roughly the time to drain the full queue."""
        return int(min(60, max(1, math.ceil(self._mean_job_s * (self.workers + self.queue) / self.workers))))

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on a worker; 503 when full, 504 past the timeout."""
        if not self._slots.acquire(blocking=False):
            raise ServiceBusyError(
                f"the service is at capacity ({self.workers} workers busy, {self.queue} requests waiting); "
                f"retry after {self.retry_after()} s", retry_after=self.retry_after())
        with self._lock:
            self._busy += 1
        try:
            future = self._pool().submit(self._timed, fn, args, kwargs)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _: self._release())
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except asyncio.TimeoutError:
            future.cancel()  # frees the slot at once if it never started
            raise RequestTimeoutError(
                f"the request did not finish within {self.timeout_s:g} s (queue wait + model work); "
                "send smaller images, retry later, or start the service with a longer --timeout") from None

    def shutdown(self) -> None:
        """Stop the threads (queued jobs are cancelled); the pool starts again on the next job."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="facepipe-model")
            return self._executor

    def _timed(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self._mean_job_s = 0.8 * self._mean_job_s + 0.2 * (time.perf_counter() - start)

    def _release(self) -> None:
        with self._lock:
            self._busy -= 1
        self._slots.release()
