"""Stalls: the sender waited, and what for (docs/timing.md, "TCP").

Shared by the loop (tcp_analysis) and the column-wise pass (tcp_columns): one
definition of the thresholds and of the classification.
"""

from __future__ import annotations

from dataclasses import dataclass

DELAYED_ACK_MIN = 0.015  # s: an ACK this late after a small segment is a delayed ACK
RELEASE_SLACK = 0.002  # s: a segment sent this soon after an ACK was released by it
MIN_STALL = 0.001  # s: shorter waits are not worth listing


@dataclass(slots=True)
class Stall:
    """The sender waited: from ``start`` (its last segment) to ``end`` (its next new one)."""

    direction: int
    cause: str  # "window", "nagle", "cwnd"
    start: float
    end: float
    frame: int  # the frame that ended the wait

    @property
    def seconds(self) -> float:
        return self.end - self.start



def classify_wait(figures, last_data: float, window_bound: bool, last_small: tuple[float, int] | None,
                  last_ack: tuple[float, bool] | None, time: float, frame: int) -> None:
    """A new data segment at ``time`` after the sender's previous one at ``last_data``: if an
    ACK released it, add the stall to ``figures`` with its cause.

    ``window_bound`` and ``last_small`` are the sender's state after its previous
    segment; ``last_ack`` the (time, pure) of the peer's last ACK.
    """
    if last_ack is None:
        return
    ack_time, pure = last_ack
    waited = time - last_data
    # Released by a pure ACK: an ACK carrying data (a DIMSE response) releases the application instead.
    if waited < MIN_STALL or not pure or not (last_data < ack_time <= time) \
            or time - ack_time > max(RELEASE_SLACK, 0.1 * waited):
        return
    if window_bound:
        cause = "window"
    elif last_small is not None and ack_time - last_small[0] >= DELAYED_ACK_MIN:
        cause = "nagle"
    else:
        cause = "cwnd"
    figures.stalls.append(Stall(figures.direction, cause, last_data, time, frame))
