"""Helpers shared by the Pilot-driven TUI tests."""

from __future__ import annotations

from textual.worker import WorkerCancelled


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
