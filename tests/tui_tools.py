"""Helpers shared by the Pilot-driven TUI tests."""

from __future__ import annotations

import asyncio
import functools
import inspect

from textual.worker import WorkerCancelled


def run_async(test):
    """Run an async test on a fresh event loop (no asyncio plugin needed)."""
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))
    wrapper.__signature__ = inspect.signature(test)
    return wrapper


async def wait_for_workers(app) -> None:
    """Wait for every running worker, one by one.

    ``WorkerManager.wait_for_complete`` raises ``WorkerCancelled`` when a newer selection has
    cancelled the detail worker of the previous one (seen on loaded machines); a cancelled worker
    is done as far as a test is concerned.
    """
    for worker in list(app.workers):
        try:
            await worker.wait()
        except WorkerCancelled:
            pass
