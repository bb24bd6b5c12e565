"""Which inputs form which capture, in which order, and whether OUTDIR already answers them.

Everything here is decided from the inputs' contents (their hashes and timestamps) and the
decoding options, never from file names: ring-buffer tools name files in ways that do not
sort in time (``tcpdump -C``: ring, ring1, ... ring10, ring2), and a file can be renamed or
copied.  Plain functions over small records; no Dask, no file reading but ``run.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from dicomtui.core.model.analysis import AnalysisConfig

RUNS = "runs"
# How a run's inputs are arranged into one capture.  A committed run that does not carry this
# exact value was arranged otherwise (before it, in name order) and is not reused.
ARRANGEMENT = "time order: first timestamp, last timestamp, content hash"


def decoding_fingerprint(config: AnalysisConfig, disabled) -> dict:
    """What the tables depend on besides the inputs: the options that change decoding.

    (``fast_path`` and ``bulk_min_bytes`` choose between code paths that give the same analysis,
    so they are not part of it.)
    """
    return {
        "ports": sorted(config.ports),
        "heuristic": bool(config.heuristic),
        "options": dict(sorted(config.options.items())),
        "disabled_plugins": sorted(disabled),
    }


def time_key(summary, content_hash: str) -> tuple:
    """Where a file goes among the run's inputs: by its first, then last ordering key (running
    maximum timestamp), ties by content.  Within one capture the single pass merges frames by
    timestamp whatever the file order; the order only decides ties (equal timestamps in two
    files) and where ``--run-files`` cuts."""
    return (summary.first_key, summary.last_key, content_hash)


def cut_runs(ordered: list, run_files: int, first_key, last_key) -> list[list]:
    """Cut files in time order into runs of about ``run_files`` files (0: one run).

    A run is only cut where the next file starts after every file of the run has ended:
    files whose time ranges interleave (two mirror ports) stay in one capture, so a run can
    hold more than ``run_files`` files.
    """
    if run_files <= 0 or len(ordered) <= run_files:
        return [ordered] if ordered else []
    runs: list[list] = []
    current: list = []
    ends = float("-inf")
    for item in ordered:
        if len(current) >= run_files and first_key(item) > ends:
            runs.append(current)
            current, ends = [], float("-inf")
        current.append(item)
        ends = max(ends, last_key(item))
    runs.append(current)
    return runs


def run_identity(hashes_in_order: list[str], fingerprint: dict, problems: list[str]) -> str:
    """The run id: a hash of everything the run's tables depend on."""
    text = json.dumps({"arrangement": ARRANGEMENT, "decoding": fingerprint, "inputs": hashes_in_order,
                       "problems": sorted(problems)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Committed:
    """The committed runs of an OUTDIR, by the content hashes of their inputs."""

    runs: dict[str, dict] = field(default_factory=dict)  # run id -> run.json
    by_hash: dict[str, str] = field(default_factory=dict)  # content hash -> run id
    analysed: set[str] = field(default_factory=set)  # hashes of inputs read (not merely reported as problems)

    @classmethod
    def read(cls, outdir: str) -> Committed:
        found = cls()
        root = os.path.join(outdir, RUNS)
        if not os.path.isdir(root):
            return found
        for run_id in sorted(os.listdir(root)):
            try:
                with open(os.path.join(root, run_id, "run.json"), encoding="utf-8") as handle:
                    record = json.load(handle)
            except (OSError, ValueError):
                continue
            found.runs[run_id] = record
            # Inputs read, and inputs that could not be (a warning names an input that was read).
            problems = [item for item in record.get("input_problems", []) if item.get("severity") != "warning"]
            for item in record.get("inputs", []) + problems:
                if item.get("content_hash"):
                    found.by_hash.setdefault(item["content_hash"], run_id)
            found.analysed.update(item["content_hash"] for item in record.get("inputs", []) if item.get("content_hash"))
        return found

    def mismatch(self, run_id: str, fingerprint: dict) -> str | None:
        """Why run ``run_id`` cannot stand for these inputs now, or None if it can."""
        record = self.runs[run_id]
        if record.get("arrangement") != ARRANGEMENT:
            return ("made by an earlier dicomtui, which put the files in another arrangement (by name, not "
                    "by time)")
        theirs = record.get("decoding") or {}
        differing = [key for key in sorted(set(fingerprint) | set(theirs)) if fingerprint.get(key) != theirs.get(key)]
        if differing:
            return "made with other decoding options (" + "; ".join(
                f"{key}: {_short(theirs.get(key))} there, {_short(fingerprint.get(key))} now" for key in differing) + ")"
        return None

    def overlapping(self, first_time: float | None, last_time: float | None) -> list[str]:
        """Committed runs whose time range meets [first_time, last_time]."""
        if first_time is None or last_time is None:
            return []
        found = []
        for run_id, record in self.runs.items():
            start, end = record.get("first_time"), record.get("last_time")
            if start is not None and end is not None and first_time <= end and start <= last_time:
                found.append(run_id)
        return found


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def refusal(conflicts: dict[str, list[str]], committed: Committed, fingerprint: dict, outdir: str) -> str:
    """The message when inputs are in committed runs that cannot stand for them now."""
    parts = []
    for run_id, paths in sorted(conflicts.items()):
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        parts.append(f"{len(paths)} inputs ({shown}) are in run {run_id}, {committed.mismatch(run_id, fingerprint)}")
    runs = " ".join(os.path.join(outdir, RUNS, run_id) for run_id in sorted(conflicts))
    return ("; ".join(parts) + ". Their tables would stand for a different analysis, and adding another run of the "
            f"same inputs would count them twice: write to another OUTDIR, or delete {runs} to redo "
            "them with these options")
