"""The few Dask client calls the runner makes, done in this process, one task after another.

For an input that one local worker would handle (``runner.default_workers``), a Dask cluster
adds only its start-up: importing ``distributed`` here and in the worker, starting the
scheduler and the worker process, about 1-2 CPU-s, as much as decoding 100-200 MB.  The
runner then uses this stand-in instead: the same task functions, in the order they are
submitted (every task is submitted after the tasks it depends on), with their results kept
here.  The tables, the staging and the resuming are the same; there is no dashboard.
"""

from __future__ import annotations

import itertools
import os
import socket


class Future:
    """A finished task: its result, or the exception it raised (raised again by ``result``)."""

    _keys = itertools.count()

    def __init__(self, function, args, kwargs) -> None:
        self.key = f"{getattr(function, '__name__', 'task')}-{next(self._keys)}"
        self.error: BaseException | None = None
        self.value = None
        try:
            self.value = function(*_resolve(args), **_resolve(kwargs))
        except Exception as exc:  # kept for result(), as a Dask future keeps a task's exception
            self.error = exc

    def result(self):
        if self.error is not None:
            raise self.error
        return self.value


def _resolve(value):
    """``value`` with every Future in it (in lists, tuples, dicts, sets) replaced by its result."""
    if isinstance(value, Future):
        return value.result()
    if isinstance(value, list):
        return [_resolve(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_resolve(item) for item in value)
    if isinstance(value, dict):
        return {key: _resolve(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return type(value)(_resolve(item) for item in value)
    return value


class Client:
    """``submit``, ``map``, ``nthreads``, ``dashboard_link`` and ``close`` of a Dask client."""

    dashboard_link = None

    def submit(self, function, *args, pure: bool = True, **kwargs) -> Future:
        return Future(function, args, kwargs)

    def map(self, function, items, pure: bool = True) -> list[Future]:
        return [Future(function, (item,), {}) for item in items]

    def nthreads(self) -> dict[str, int]:
        return {f"{socket.gethostname()}:{os.getpid()}": 1}

    def close(self) -> None:
        pass


def as_completed(futures, with_results: bool = False):
    """Dask's ``as_completed`` over finished tasks: in the order given."""
    for future in list(futures):
        yield (future, future.result()) if with_results else future
