"""``dicomtui --batch``: the split (``split``) and the merge (``merge``) scheduled on Dask.

Stages:

1. hash every input (SHA-256 of its bytes; here in threads, or on the ``--scheduler``
   cluster): inputs already in a committed run made the same way are skipped, inputs in one
   made in another arrangement or with other decoding options refuse the command
   (``arrangement``);
2. index each new input (``split.index_file``), one task per file;
   then arrange the readable files in time order and cut them into runs (``arrangement``);
3. decode each flow group (``split.decode_group``), taking from every file's index only
   that group's part (the shuffle), and pickle the result into the staging directory;
4. merge the groups, run the expert rules and write the Parquet tables (``merge``,
   ``tables``), one task;
5. commit: the run's directory is renamed into ``OUTDIR/runs/`` (one rename).

The tasks run on a Dask cluster, or, when the new input is one local worker's worth, in this
process through ``inprocess`` (the same functions, without a cluster's start-up).

Nothing under ``OUTDIR/runs/`` is ever half written.  A run that stops early leaves its
work in ``OUTDIR/.staging/<run id>/``; the run id is a hash of the inputs' contents (in time
order) and the options, so the same command again reuses the groups decoded before and
redoes the rest.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field

from dicomtui.core.model.analysis import AnalysisConfig

from .arrangement import ARRANGEMENT, RUNS, Committed, cut_runs, decoding_fingerprint, refusal, run_identity, time_key
from .inputs import expand_inputs, hash_file
from .split import decode_group, index_file, numbering_plan
from .tables import SCHEMA_VERSION, write_tables

CONNECT_TIMEOUT = "20s"  # to reach a --scheduler
BYTES_PER_WORKER = 256 << 20  # see default_workers
STAGING = ".staging"


@dataclass
class BatchOutcome:
    run_id: str | None = None  # the first run's (most batches are one run)
    run_dir: str | None = None
    run_ids: list[str] = field(default_factory=list)
    inputs: int = 0
    skipped: int = 0
    bytes: int = 0
    frames: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)  # inputs read, but not placed as asked (see stderr)
    seconds: float = 0.0
    dashboard: str | None = None
    reused_groups: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # wall time of each stage


class Progress:
    """One status line on a terminal (files and bytes per stage); silent otherwise."""

    def __init__(self, stream=None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.name, self.items, self.total_items, self.done_bytes, self.total_bytes = "", 0, 0, 0, 0
        self.unit = "files"
        self.last = 0.0

    def stage(self, name: str, total_items: int, total_bytes: int = 0, unit: str = "files") -> None:
        self.name, self.items, self.total_items = name, 0, total_items
        self.done_bytes, self.total_bytes, self.unit = 0, total_bytes, unit
        self._show(force=True)

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        self.items += items
        self.done_bytes += nbytes
        self._show(force=self.items == self.total_items)

    def _show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        text = f"{self.name}: {self.items}/{self.total_items} {self.unit}"
        if self.total_bytes:
            text += f", {self.done_bytes / 1e6:,.1f}/{self.total_bytes / 1e6:,.1f} MB"
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def summary_of(index_result: dict) -> dict:
    return {key: index_result[key] for key in ("summary", "problem") if key in index_result}


def part_of(index_result: dict, group: int):
    return index_result["parts"][group]


def part_with_fragments(index_result: dict, group: int, plan: dict, index: int):
    """The group's part of file ``index`` (its place in time order) with the group's IP fragments of
    that file (``fragments.plan_fragments``)."""
    from .fragments import with_fragments

    return with_fragments(index_result["parts"][group], index_result.get("fragments"), plan.get(index), group)


def fragments_of(index_result: dict):
    return index_result.get("fragments")


def untimed_of(index_result: dict):
    return index_result.get("untimed")


def keys_of(index_result: dict):
    return index_result["keys"]


def clock_of(index_result: dict):
    return index_result.get("clock", [])


def reduce_run(summaries, group_paths, config, make_host, disabled, bases, undecoded_keys, out_dir, run_id,
               extra_tables, record, clock_steps=(), _decoded=(), untimed=None) -> dict:
    """Merge the groups, run the rules, write every table and ``run.json`` into ``out_dir``."""
    from .merge import merge_groups, undecoded_kinds, untimed_frames
    from .tables import analysis_tables

    started = time.monotonic()
    analysis = merge_groups(summaries, group_paths, config, make_host, disabled,
                            undecoded_kinds(summaries, bases, undecoded_keys), clock_steps,
                            untimed_frames(summaries, bases, undecoded_keys, untimed or {}))
    tables = analysis_tables(analysis, run_id)
    tables.update(extra_tables)
    counts = write_tables(tables, out_dir, run_id)
    record.update(counts=counts, frames=analysis.frame_count, tcp_frames=analysis.tcp_frame_count,
                  first_time=analysis.first_time, last_time=analysis.last_time,
                  merge_seconds=round(time.monotonic() - started, 3))
    for source in analysis.sources:
        source.close()
    return record


def _client(scheduler: str | None, workers: int | None, processes: bool):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout=CONNECT_TIMEOUT), None
    cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=processes,
                           silence_logs=logging.ERROR, dashboard_address=":0")
    return Client(cluster), cluster


def default_workers(new_bytes: int) -> int:
    """Local workers without ``--workers``: one per core, but no more than one per
    ``BYTES_PER_WORKER`` of new input.  A local cluster costs CPU to start (Dask here; Python,
    Dask, numpy and the plugins in each worker process): measured 1.3 CPU-s with one worker
    process, 3.3 with two, as much as decoding 100-250 MB.  More workers than this would buy
    little time for much CPU; one worker's worth runs in this process (``inprocess``)."""
    return max(1, min(os.cpu_count() or 1, new_bytes // BYTES_PER_WORKER))


def _hash_here(paths: list[str], progress: Progress) -> list[dict]:
    from concurrent.futures import ThreadPoolExecutor

    hashed = []
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for item in pool.map(hash_file, paths):
            hashed.append(item)
            progress.advance(1, item["size"])
    return hashed


class _Run:
    """One run: a set of inputs read as one capture, staged, merged and committed together.

    ``items``, ``summaries`` and ``index_futures`` are in the run's time order (``arrangement``):
    a file's position there is its source index in the capture.
    """

    def __init__(self, outdir: str, items: list[dict], summaries: list, index_futures: list, problems: list[dict],
                 fingerprint: dict) -> None:
        self.items, self.problems = items, problems
        self.summaries = summaries
        self.index_futures = index_futures
        self.warnings: list[dict] = []
        self.run_id = run_identity([item["hash"] for item in items], fingerprint,
                                   [f"{p['path']}:{p['problem']}" for p in problems])
        self.run_dir = os.path.join(outdir, RUNS, self.run_id)
        self.staging = os.path.join(outdir, STAGING, self.run_id)
        self.out_dir = os.path.join(self.staging, "out")
        self.groups = 0
        self.reduce_future = None
        self.reused_groups = 0
        self.record: dict = {}

    def prepare(self, groups: int) -> None:
        """The staging directory.  Groups a stopped run decoded are kept if they were cut the same way."""
        plan_path = os.path.join(self.staging, "plan.json")
        try:
            with open(plan_path, encoding="utf-8") as handle:
                staged = json.load(handle)["groups"]
        except (OSError, ValueError, KeyError):
            staged = None
        if staged != groups:
            shutil.rmtree(os.path.join(self.staging, "groups"), ignore_errors=True)
            os.makedirs(self.staging, exist_ok=True)
            with open(plan_path + ".tmp", "w", encoding="utf-8") as handle:
                json.dump({"groups": groups, "inputs": [item["path"] for item in self.items]}, handle)
            os.replace(plan_path + ".tmp", plan_path)
        self.groups = groups
        os.makedirs(os.path.join(self.staging, "groups"), exist_ok=True)
        shutil.rmtree(self.out_dir, ignore_errors=True)  # a merge that stopped early starts again
        os.makedirs(self.out_dir)

    def group_path(self, group: int) -> str:
        return os.path.join(self.staging, "groups", f"group-{group:04d}.pickle")


class BatchRefused(Exception):
    """The inputs are in committed runs that cannot stand for them now (one message for the user)."""


def _batch_groups(outdir: str, todo: list[dict], fingerprint: dict, run_files: int, groups: int | None,
                  threads: int) -> tuple[int, str]:
    """The number of flow groups, and the file that keeps it for a stopped batch.

    The files are indexed into groups before they are arranged into runs, so the count is
    chosen per batch; a batch stopped and started again (the same new inputs, options and
    ``--run-files``) finds the count it used and so reuses its decoded groups.
    """
    key = hashlib.sha256(json.dumps([sorted(item["hash"] for item in todo), fingerprint, run_files],
                                    sort_keys=True).encode()).hexdigest()[:16]
    path = os.path.join(outdir, STAGING, f"batch-{key}.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return int(json.load(handle)["groups"]), path
    except (OSError, ValueError, KeyError, TypeError):
        pass
    several_runs = 0 < run_files < len(todo)
    chosen = groups or max(4, 2 * threads) // (2 if several_runs else 1)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump({"groups": chosen}, handle)
    os.replace(path + ".tmp", path)
    return chosen, path


def _import_before_threads(make_host, disabled) -> None:
    """Import, in this thread, what the tasks would otherwise import in several worker threads at once.

    Python 3.11's import locks can deadlock when threads import the same modules concurrently
    (fixed in 3.12, gh-91351): a threaded local cluster hung the test suite once in six runs with
    two worker threads inside plugin loading.  Once the plugins and the lazily imported codec are
    in ``sys.modules``, the tasks only look them up.
    """
    make_host(disabled=set(disabled))
    import dicomtui.core.protocol.datasets  # noqa: F401  (imported lazily by the data-set plugin)


def run_batch(outdir: str, patterns: list[str], make_host, config: AnalysisConfig | None = None, disabled=(),
              scheduler: str | None = None, workers: int | None = None, groups: int | None = None,
              processes: bool = True, progress: Progress | None = None, say=None,
              run_files: int = 0) -> BatchOutcome:
    """Analyse ``patterns`` into ``OUTDIR`` (see the module docstring).

    ``make_host(disabled=...)`` builds the plugin host in each task (the command line's
    factory: workers load the same plugins).  ``run_files``: cut the new inputs, in time order,
    into runs of about this many files (``arrangement.cut_runs``), each one capture with its own
    merge; runs are scheduled together, so one run's merge overlaps the others' decoding.  0:
    all new inputs are one run.

    Raises ``BatchRefused`` when inputs are in committed runs made in another arrangement or
    with other decoding options (their tables cannot stand for this command's).
    """
    batch = _Batch(outdir, make_host, config or AnalysisConfig(), disabled, processes,
                   progress or Progress(), say or (lambda text: print(f"dicomtui: {text}", file=sys.stderr)))
    paths, pattern_problems, passed_over = expand_inputs(patterns)
    batch.problems = [{"path": path, "content_hash": None, "size": None, "problem": text, "noticed": batch.noticed}
                      for path, text in pattern_problems]
    if passed_over:
        batch.say(f"passed over {passed_over} files in the given directories that are not captures")
    os.makedirs(outdir, exist_ok=True)
    try:
        hashed = batch.hash_inputs(paths, scheduler)                     # 1. hash
        committed = Committed.read(outdir)
        todo = batch.new_inputs(hashed, committed)
        if not todo and not batch.problems:
            return batch.nothing_new()
        batch.start_workers(todo, workers)
        groups, batch_plan = _batch_groups(outdir, todo, batch.fingerprint, run_files, groups, batch.threads())
        index_futures, results = batch.index(todo, groups)               # 2. index, then arrange
        runs = batch.arrange(todo, index_futures, results, run_files, committed)
        if not runs:
            _remove(batch_plan)
            return batch.nothing_new()
        for run in runs:
            run.prepare(groups)
        finished = batch.decode_and_merge(runs)                           # 3. decode, 4. merge
        batch.commit(runs, finished)                                      # 5. commit
        _remove(batch_plan)
        return batch.done(runs)
    finally:
        batch.close()


class _Batch:
    """One ``run_batch`` call's state, one method per stage (the module docstring's numbers)."""

    def __init__(self, outdir: str, make_host, config: AnalysisConfig, disabled, processes: bool,
                 progress: Progress, say) -> None:
        self.outdir = outdir
        self.make_host = make_host
        self.config = config
        self.disabled = disabled
        self.processes = processes
        self.progress = progress
        self.say = say
        self.fingerprint = decoding_fingerprint(config, disabled)
        self.started = self.stage_start = time.monotonic()
        self.outcome = BatchOutcome()
        self.noticed = datetime.datetime.now(datetime.UTC)
        self.problems: list[dict] = []
        self.client = self.cluster = None
        self.as_completed = None
        self.spool = os.path.join(outdir, STAGING, "spool")

    def stage_done(self, name: str) -> None:
        now = time.monotonic()
        self.outcome.stage_seconds[name] = round(now - self.stage_start, 3)
        self.stage_start = now

    def hash_inputs(self, paths: list[str], scheduler: str | None) -> list[dict]:
        """On a cluster given with --scheduler (its nodes share the reading); otherwise here, in
        threads (hashlib releases the GIL), before any worker is started, so that a rerun with
        nothing new starts none and the local cluster is sized to the new bytes."""
        self.progress.stage("hashing", len(paths), sum(_size(path) for path in paths))
        if scheduler:
            from dask.distributed import as_completed

            self.client, self.cluster = _client(scheduler, None, self.processes)
            self.as_completed = as_completed
            self._announce_dashboard()
            hashed = []
            for future in as_completed(self.client.map(hash_file, paths, pure=False)):
                hashed.append(future.result())
                self.progress.advance(1, hashed[-1]["size"])
        else:
            hashed = _hash_here(paths, self.progress)
        hashed.sort(key=lambda item: item["path"])  # for the messages only: the order comes from contents
        self.stage_done("hash")
        return hashed

    def new_inputs(self, hashed: list[dict], committed: Committed) -> list[dict]:
        """The inputs to analyse: not committed already, not a copy of another input; raises
        ``BatchRefused`` for inputs committed in another arrangement or with other options."""
        todo, seen, conflicts = [], set(), {}
        for item in hashed:
            if item["problem"]:
                self.problems.append({**item, "content_hash": None, "noticed": self.noticed})
            elif item["hash"] in committed.by_hash:
                run_id = committed.by_hash[item["hash"]]
                # A file that was not a capture has no analysis that options could change.
                if item["hash"] in committed.analysed and committed.mismatch(run_id, self.fingerprint):
                    conflicts.setdefault(run_id, []).append(item["path"])
                else:
                    self.outcome.skipped += 1
            elif item["hash"] in seen:
                self.outcome.skipped += 1
                self.say(f"{item['path']}: same content as another input; read once")
            else:
                seen.add(item["hash"])
                todo.append(item)
        if conflicts:
            raise BatchRefused(refusal(conflicts, committed, self.fingerprint, self.outdir))
        return todo

    def start_workers(self, todo: list[dict], workers: int | None) -> None:
        if self.client is not None:
            return  # the --scheduler cluster that hashed
        new_bytes = sum(item["size"] for item in todo)
        count = workers or default_workers(new_bytes)
        if count == 1:
            # One local worker: the same tasks in this process, without a cluster's start-up.
            from .inprocess import Client, as_completed

            self.client, self.as_completed = Client(), as_completed
            self.say(f"{new_bytes / 1e6:,.1f} MB of new input for one worker: analysing it in this process "
                     "(--workers 2 or more for a local Dask cluster)")
            return
        from dask.distributed import as_completed

        if not self.processes:
            _import_before_threads(self.make_host, self.disabled)
        self.client, self.cluster = _client(None, count, self.processes)
        self.as_completed = as_completed
        self._announce_dashboard()

    def _announce_dashboard(self) -> None:
        self.outcome.dashboard = self.client.dashboard_link
        self.say(f"Dask dashboard: {self.outcome.dashboard}")

    def threads(self) -> int:
        return sum(self.client.nthreads().values()) or 1

    def index(self, todo: list[dict], groups: int) -> tuple[list, dict[int, dict]]:
        """Every new file indexed; only the summaries come to this process, the index parts stay
        on the workers until the group that needs each is decoded."""
        self.progress.stage("indexing", len(todo), sum(item["size"] for item in todo))
        index_futures = [self.client.submit(index_file, number, item["path"], groups, self.spool, item["hash"],
                                            pure=False)
                         for number, item in enumerate(todo)]
        summary_futures = [self.client.submit(summary_of, future, pure=False) for future in index_futures]
        number_of = {future.key: number for number, future in enumerate(summary_futures)}
        results: dict[int, dict] = {}
        for future, value in self.as_completed(summary_futures, with_results=True):
            number = number_of[future.key]
            results[number] = value
            self.progress.advance(1, todo[number]["size"])
        self.stage_done("index")
        return index_futures, results

    def arrange(self, todo: list[dict], index_futures: list, results: dict[int, dict], run_files: int,
                committed: Committed) -> list["_Run"]:
        """The readable files in time order, cut into runs (the first run also carries the inputs
        that could not be read); runs already on disk are left out."""
        good = []
        for number, item in enumerate(todo):
            if results[number].get("problem"):
                self.problems.append({"path": item["path"], "content_hash": item["hash"], "size": item["size"],
                                      "problem": results[number]["problem"], "noticed": self.noticed})
            else:
                good.append(number)
        good.sort(key=lambda number: time_key(results[number]["summary"], todo[number]["hash"]))
        chunks = cut_runs(good, run_files, lambda number: results[number]["summary"].first_key,
                          lambda number: results[number]["summary"].last_key) or [[]]
        runs = []
        for position, chunk in enumerate(chunks):
            run = _Run(self.outdir, [todo[number] for number in chunk],
                       [results[number]["summary"] for number in chunk],
                       [index_futures[number] for number in chunk], self.problems if position == 0 else [],
                       self.fingerprint)
            if os.path.exists(run.run_dir):
                self.say(f"run {run.run_id} already holds these inputs")
                continue
            run.warnings = _placement_warnings(run, committed, self.outdir, self.noticed)
            runs.append(run)
        return runs

    def decode_and_merge(self, runs: list["_Run"]) -> list[dict]:
        """The flow groups (those a stopped run did not finish), then the merges: submitted for
        every run before waiting on any."""
        progress = self.progress
        progress.stage("decoding flow groups", sum(run.groups for run in runs), unit="groups")
        decode_owner = {}
        for run in runs:
            _submit_run(self.client, run, self.config, self.make_host, self.disabled, self.noticed, decode_owner,
                        self.fingerprint)
            self.outcome.reused_groups += run.reused_groups
            progress.advance(run.reused_groups)
        decoded_by: dict[str, set] = {run.run_id: set() for run in runs}
        for future, value in self.as_completed(list(decode_owner.values()), with_results=True):
            decoded_by[value["run_id"]].add(value["worker"])
            progress.advance(1)
        self.stage_done("decode")
        progress.stage("merging and writing tables", len(runs), unit="runs")
        for run in runs:
            run.record["decoded_by"] = sorted(decoded_by[run.run_id])
        finished = []
        for future, record in self.as_completed([run.reduce_future for run in runs], with_results=True):
            finished.append(record)
            progress.advance(1)
        self.stage_done("merge")
        return finished

    def commit(self, runs: list["_Run"], finished: list[dict]) -> None:
        """Each run's directory renamed into ``OUTDIR/runs/``, in time order."""
        outcome = self.outcome
        os.makedirs(os.path.join(self.outdir, RUNS), exist_ok=True)
        records = {record["run_id"]: record for record in finished}
        for run in runs:
            with open(os.path.join(run.out_dir, "run.json.tmp"), "w", encoding="utf-8") as handle:
                json.dump({**records[run.run_id], "decoded_by": run.record["decoded_by"]}, handle, indent=1)
            os.replace(os.path.join(run.out_dir, "run.json.tmp"), os.path.join(run.out_dir, "run.json"))
            os.replace(run.out_dir, run.run_dir)
            shutil.rmtree(run.staging, ignore_errors=True)
            for summary in run.summaries:
                if summary.read_path != summary.name:  # a gzip input's inflated copy
                    _remove(summary.read_path)
            record = records[run.run_id]
            outcome.run_ids.append(run.run_id)
            outcome.inputs += len(run.items)
            outcome.bytes += sum(item["size"] for item in run.items)
            outcome.frames += record.get("frames", 0)
            for name, count in record.get("counts", {}).items():
                outcome.counts[name] = outcome.counts.get(name, 0) + count
            outcome.problems.extend(run.problems)
            outcome.warnings.extend(run.warnings)

    def done(self, runs: list["_Run"]) -> BatchOutcome:
        try:
            os.rmdir(self.spool)  # when no other batch's inflated inputs are waiting there
        except OSError:
            pass
        self.progress.close()
        outcome = self.outcome
        outcome.run_id, outcome.run_dir = runs[0].run_id, runs[0].run_dir
        outcome.seconds = time.monotonic() - self.started
        return outcome

    def nothing_new(self) -> BatchOutcome:
        return _nothing_new(self.outcome, self.progress, self.say, self.outdir, self.started)

    def close(self) -> None:
        self.progress.close()
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _nothing_new(outcome: BatchOutcome, progress: Progress, say, outdir: str, started: float) -> BatchOutcome:
    progress.close()
    say(f"nothing new: {outcome.skipped} inputs already in {outdir}")
    outcome.seconds = time.monotonic() - started
    return outcome


def _placement_warnings(run: _Run, committed: Committed, outdir: str, noticed) -> list[dict]:
    """Inputs whose time range meets a committed run's: they cannot join that capture (it is
    committed), so they are read as this run's, and connections across them are cut."""
    warnings = []
    for item, summary in zip(run.items, run.summaries):
        others = committed.overlapping(summary.first_key if summary.frames else None,
                                       summary.last_key if summary.frames else None)
        if others:
            where = ", ".join(os.path.join(outdir, RUNS, run_id) for run_id in others)
            warnings.append({
                "path": item["path"], "content_hash": item["hash"], "size": item["size"], "noticed": noticed,
                "severity": "warning",
                "problem": (f"its time range meets that of committed run(s) {where}: it is read as a separate "
                            "capture, so connections across it are cut; to read them as one capture, delete "
                            "that run and give all its files again")})
    return warnings


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _submit_run(client, run: _Run, config: AnalysisConfig, make_host, disabled, noticed, decode_owner,
                fingerprint: dict) -> None:
    """Number the run's frames, submit its missing flow groups and its merge (without waiting)."""
    for position, summary in enumerate(run.summaries):
        summary.index = position  # the source index: the file's place in time order
    bases, overlaps = numbering_plan(run.summaries)
    frame_count = sum(summary.frames for summary in run.summaries)
    keys = {position: client.submit(keys_of, future, pure=False) for position, future in enumerate(run.index_futures)}
    files = [(summary.name, summary.read_path) for summary in run.summaries]
    group_paths = [run.group_path(group) for group in range(run.groups)]
    missing = [group for group in range(run.groups) if not os.path.exists(group_paths[group])]
    run.reused_groups = run.groups - len(missing)
    overlapping = {position: {other: keys[other] for other in overlaps[position]}
                   for position in range(len(run.summaries)) if overlaps.get(position)}
    clock = _plan_clock(client, run, bases, overlaps, keys)
    fragment_plan = _plan_fragments(client, run, bases, overlaps, keys)
    decodes = []
    for group in missing:
        if fragment_plan is None:
            parts = [client.submit(part_of, future, group, pure=False) for future in run.index_futures]
        else:
            parts = [client.submit(part_with_fragments, future, group, fragment_plan, position, pure=False)
                     for position, future in enumerate(run.index_futures)]
        future = client.submit(decode_group_of_run, run.run_id, group, files, parts, bases, overlapping,
                               frame_count, config, make_host, set(disabled), group_paths[group], clock,
                               pure=False)
        decode_owner[future.key] = future
        decodes.append(future)
    # Frames numbered by the merge from their positions: of link types or encapsulations not taken off
    # (they reach no group), and without a time of their own (the index's array of times drops the mark).
    undecoded_files = {summary.index for summary in run.summaries if summary.undecoded or summary.untimed}
    undecoded_keys = {position: keys[position] for position in undecoded_files | {
        other for position in undecoded_files for other in overlaps.get(position, [])}}
    untimed = {summary.index: client.submit(untimed_of, run.index_futures[summary.index], pure=False)
               for summary in run.summaries if summary.untimed}
    inputs_rows = [{"run_id": run.run_id, "path": summary.name, "content_hash": item["hash"],
                    "size": item["size"], "frames": summary.frames, "first_time": summary.first_ts,
                    "last_time": summary.last_ts, "start": _utc(summary.first_ts), "notes": summary.notes}
                   for summary, item in zip(run.summaries, run.items)]
    problem_rows = [{"severity": "error", **problem, "run_id": run.run_id} for problem in run.problems + run.warnings]
    run.record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run.run_id,
        "created": noticed.isoformat(),
        "groups": run.groups,
        "arrangement": ARRANGEMENT,
        "decoding": fingerprint,
        "inputs": [{k: v for k, v in row.items() if k != "start"} for row in inputs_rows],
        "input_problems": [{**{k: v for k, v in row.items() if k != "noticed"},
                            "noticed": row["noticed"].isoformat()} for row in problem_rows],
        "options": dict(config.options),
    }
    # The merge waits for this run's groups (passed as dependencies), not for the whole batch.
    run.reduce_future = client.submit(
        reduce_run, run.summaries, group_paths, config, make_host, set(disabled), bases, undecoded_keys, run.out_dir,
        run.run_id, {"inputs": inputs_rows, "input_problems": problem_rows}, run.record, clock, decodes, untimed,
        pure=False)


def _plan_fragments(client, run: _Run, bases, overlaps, keys):
    """Each IP fragment's flow group (``fragments.plan_fragments``), a task when any file holds TCP
    fragments; most runs have none: no task, and the parts go to the groups as they are."""
    from .fragments import plan_fragments

    fragment_files = [summary.index for summary in run.summaries if summary.fragments]
    if not fragment_files:
        return None
    parts_of = {position: client.submit(fragments_of, run.index_futures[position], pure=False)
                for position in fragment_files}
    fragment_keys = {other: keys[other] for position in fragment_files for other in overlaps.get(position, [])}
    return client.submit(plan_fragments, run.summaries, parts_of, bases, fragment_keys, run.groups, pure=False)


def _plan_clock(client, run: _Run, bases, overlaps, keys):
    """The run's steps of the clock back (``clock.plan_clock``), a task when any file has frames
    where the clock may have stepped (its index says so); most runs have none: no task."""
    from .clock import plan_clock

    clock_files = [summary.index for summary in run.summaries if summary.clock_runs]
    if not clock_files:
        return []
    runs_of = {position: client.submit(clock_of, run.index_futures[position], pure=False)
               for position in clock_files}
    clock_keys = {other: keys[other] for position in clock_files for other in overlaps.get(position, [])}
    return client.submit(plan_clock, run.summaries, runs_of, bases, clock_keys, pure=False)


def decode_group_of_run(run_id: str, *args) -> dict:
    return {**decode_group(*args), "run_id": run_id}


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _utc(timestamp: float | None):
    return None if timestamp is None else datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
