"""Time display formats, as Wireshark's and tshark's ``-t``: the same letters, the same meanings.

``r`` seconds since the first frame (the default), ``a`` absolute local time of
day, ``ad`` absolute local date and time, ``u`` UTC time of day, ``ud`` UTC
date and time, ``e`` seconds since the epoch, ``d`` since the previous captured
PDU, ``dd`` since the previous displayed row.  Microseconds everywhere: a
capture taken over days still tells two PDUs 1 µs apart.  Absolute times are
what lets a PDU be matched to a line in a PACS or modality log.
"""

from __future__ import annotations

import datetime as _dt

FORMATS: dict[str, str] = {
    "r": "seconds since the first frame",
    "a": "absolute local time of day",
    "ad": "absolute local date and time",
    "u": "UTC time of day",
    "ud": "UTC date and time",
    "e": "seconds since the epoch",
    "d": "seconds since the previous PDU",
    "dd": "seconds since the previous displayed row",
}
CYCLE = ("r", "a", "ad", "u", "ud", "e", "dd", "d")
WIDTHS = {"r": 11, "a": 15, "ad": 26, "u": 15, "ud": 26, "e": 17, "d": 9, "dd": 9}


def check(name: str) -> str:
    name = name.strip().lower()
    if name not in FORMATS:
        raise ValueError(f"time format {name!r}: one of {', '.join(FORMATS)}")
    return name


def format_timestamp(name: str, timestamp: float, first: float | None, previous: float | None = None) -> str:
    """``timestamp`` (seconds since the epoch) in format ``name``; ``previous`` for d and dd."""
    if name == "r":
        return f"{timestamp - (first or 0.0):.6f}"
    if name in ("d", "dd"):
        return f"{0.0 if previous is None else timestamp - previous:.6f}"
    if name == "e":
        return f"{timestamp:.6f}"
    local = name in ("a", "ad")
    moment = _dt.datetime.fromtimestamp(timestamp, None if local else _dt.UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if name in ("ad", "ud") else "%H:%M:%S")
    return f"{text}.{moment.microsecond:06d}"


def next_format(name: str) -> str:
    return CYCLE[(CYCLE.index(name) + 1) % len(CYCLE)] if name in CYCLE else "r"


def milliseconds(seconds: float | None) -> str:
    """A duration for a column headed "ms": one decimal, always ("3004.2", never "3e+03" or "3e+03"
    beside "43.7"); "-" for nothing measured."""
    return "-" if seconds is None else f"{seconds * 1000:.1f}"
