"""Resource limits: every decoder's worst case is bounded by one of these."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping


@dataclass(slots=True)
class Limits:
    max_pdu_length: int = 1 << 26  # a PDU header claiming more is treated as corruption
    max_control_pdu: int = 1 << 20  # A-ASSOCIATE, release, abort bodies held in memory
    max_command: int = 1 << 16  # command set bytes held per message
    max_pdvs_per_pdu: int = 100_000
    max_pending_segments: int = 8192  # out-of-order TCP segments buffered per direction
    max_dataset_bytes: int = 1 << 28  # data set bytes decoded at once (export streams instead)
    max_inflated_bytes: int = 1 << 28  # deflated transfer syntax: inflate at most this much
    max_sequence_depth: int = 64
    max_elements: int = 1_000_000  # elements shown for one data set
    max_contexts: int = 256  # presentation contexts per association (PS3.8 allows 128 odd ids)
    max_connections: int = 50_000  # TCP connections tracked at once; the least recently active go first
    max_segment_record: int = 20_000_000  # TCP segments whose headers are kept for timing (28 bytes each)
    max_spool_bytes: int = 4 << 30  # gzip / stdin input copied to the temporary folder at most
    max_gzip_ratio: int = 500  # gzip input expanding more than this (past 64 MB) is a bomb

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> "Limits":
        """The defaults, with any field set by name (``-o max_pdu_length:1000000`` or a preference).

        Raises ValueError for a value that is not a positive integer.
        """
        values = {}
        for item in fields(cls):
            text = options.get(item.name)
            if text is None:
                continue
            try:
                value = int(str(text).strip().replace("_", ""), 0)
            except ValueError:
                raise ValueError(f"{item.name} must be a whole number of {_unit(item.name)}, "
                                 f"got {text!r}") from None
            if value <= 0:
                raise ValueError(f"{item.name} must be positive, got {value}")
            values[item.name] = value
        return cls(**values)


_BYTE_LIMITS = {"max_pdu_length", "max_control_pdu", "max_command", "max_dataset_bytes",
                "max_inflated_bytes", "max_spool_bytes"}


def _unit(name: str) -> str:
    return "bytes" if name in _BYTE_LIMITS else "items"
