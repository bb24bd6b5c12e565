"""``dicomtui --batch``: the split (``split``) and the merge (``merge``) scheduled on Dask.

Stages, each a set of Dask tasks:

1. hash every input (SHA-256 of its bytes): inputs already in a committed run are skipped;
2. index each new input (``split.index_file``), one task per file;
3. decode each flow group (``split.decode_group``), taking from every file's index only
   that group's part (the shuffle), and pickle the result into the staging directory;
4. merge the groups, run the expert rules and write the Parquet tables (``merge``,
   ``tables``), one task;
5. commit: the run's directory is renamed into ``OUTDIR/runs/`` (one rename).

Nothing under ``OUTDIR/runs/`` is ever half written.  A run that stops early leaves its
work in ``OUTDIR/.staging/<run id>/``; the run id is a hash of the inputs' contents, so
the same command again reuses the groups decoded before and redoes the rest.
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

from .inputs import expand_inputs, hash_file
from .split import decode_group, index_file, numbering_plan
from .tables import SCHEMA_VERSION, write_tables

RUNS = "runs"
CONNECT_TIMEOUT = "20s"  # to reach a --scheduler
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


def committed_inputs(outdir: str) -> dict[str, str]:
    """Content hash -> run id of every input in a committed run."""
    done: dict[str, str] = {}
    runs = os.path.join(outdir, RUNS)
    if not os.path.isdir(runs):
        return done
    for run_id in sorted(os.listdir(runs)):
        try:
            with open(os.path.join(runs, run_id, "run.json"), encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            continue
        for item in record.get("inputs", []) + record.get("input_problems", []):
            if item.get("content_hash"):
                done[item["content_hash"]] = run_id
    return done


def summary_of(index_result: dict) -> dict:
    return {key: index_result[key] for key in ("summary", "problem") if key in index_result}


def part_of(index_result: dict, group: int):
    return index_result["parts"][group]


def keys_of(index_result: dict):
    return index_result["keys"]


def reduce_run(summaries, group_paths, config, make_host, disabled, bases, link_keys, out_dir, run_id, extra_tables,
               record, _decoded=()) -> dict:
    """Merge the groups, run the rules, write every table and ``run.json`` into ``out_dir``."""
    from .merge import link_type_findings, merge_groups
    from .tables import analysis_tables

    started = time.monotonic()
    findings = link_type_findings(summaries, bases, link_keys)
    analysis = merge_groups(summaries, group_paths, config, make_host, disabled, findings)
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


class _Run:
    """One run: a set of inputs read as one capture, staged, merged and committed together."""

    def __init__(self, outdir: str, items: list[dict], problems: list[dict]) -> None:
        self.items, self.problems = items, problems
        identity = [item["hash"] for item in items] + sorted(f"{p['path']}:{p['problem']}" for p in problems)
        self.run_id = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:16]
        self.run_dir = os.path.join(outdir, RUNS, self.run_id)
        self.staging = os.path.join(outdir, STAGING, self.run_id)
        self.out_dir = os.path.join(self.staging, "out")
        self.groups = 0
        self.index_futures: list = []
        self.summary_futures: list = []
        self.reduce_future = None
        self.good: list[int] = []
        self.summaries: list = []
        self.reused_groups = 0

    def prepare(self, groups: int) -> None:
        """The staging directory; a stopped run's plan (its number of groups) is kept."""
        plan_path = os.path.join(self.staging, "plan.json")
        if os.path.exists(plan_path):
            with open(plan_path, encoding="utf-8") as handle:
                groups = json.load(handle)["groups"]
        else:
            os.makedirs(self.staging, exist_ok=True)
            with open(plan_path + ".tmp", "w", encoding="utf-8") as handle:
                json.dump({"groups": groups, "inputs": [item["path"] for item in self.items]}, handle)
            os.replace(plan_path + ".tmp", plan_path)
        self.groups = groups
        for sub in ("groups", "spool"):
            os.makedirs(os.path.join(self.staging, sub), exist_ok=True)
        shutil.rmtree(self.out_dir, ignore_errors=True)  # a merge that stopped early starts again
        os.makedirs(self.out_dir)

    def group_path(self, group: int) -> str:
        return os.path.join(self.staging, "groups", f"group-{group:04d}.pickle")


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
    factory: workers load the same plugins).  ``run_files``: cut the new inputs (in name order) into runs of this many files, each one
    capture with its own merge; runs are scheduled together, so one run's merge overlaps the
    others' decoding.  0: all new inputs are one run.
    """
    from dask.distributed import as_completed

    config = config or AnalysisConfig()
    progress = progress or Progress()
    say = say or (lambda text: print(f"dicomtui: {text}", file=sys.stderr))
    started = time.monotonic()
    outcome = BatchOutcome()
    paths, pattern_problems, passed_over = expand_inputs(patterns)
    noticed = datetime.datetime.now(datetime.UTC)
    problems = [{"path": path, "content_hash": None, "size": None, "problem": text, "noticed": noticed}
                for path, text in pattern_problems]
    if passed_over:
        say(f"passed over {passed_over} files in the given directories that are not captures")
    os.makedirs(outdir, exist_ok=True)
    if not processes and scheduler is None:
        _import_before_threads(make_host, disabled)
    client, cluster = _client(scheduler, workers, processes)
    try:
        outcome.dashboard = client.dashboard_link
        say(f"Dask dashboard: {outcome.dashboard}")
        threads = sum(client.nthreads().values()) or 1
        stage_start = time.monotonic()

        def stage_done(name: str) -> None:
            nonlocal stage_start
            now = time.monotonic()
            outcome.stage_seconds[name] = round(now - stage_start, 3)
            stage_start = now

        # 1. hash
        progress.stage("hashing", len(paths), sum(_size(path) for path in paths))
        hashed = []
        for future in as_completed(client.map(hash_file, paths, pure=False)):
            item = future.result()
            hashed.append(item)
            progress.advance(1, item["size"])
        hashed.sort(key=lambda item: item["path"])
        stage_done("hash")
        done = committed_inputs(outdir)
        todo, seen = [], set()
        for item in hashed:
            if item["problem"]:
                problems.append({**item, "content_hash": None, "noticed": noticed})
            elif item["hash"] in done or item["hash"] in seen:
                outcome.skipped += 1
                if item["hash"] in seen:
                    say(f"{item['path']}: same content as another input; read once")
            else:
                seen.add(item["hash"])
                todo.append(item)
        size = run_files if run_files > 0 else max(1, len(todo))
        chunks = [todo[start:start + size] for start in range(0, len(todo), size)] or ([[]] if problems else [])
        runs = []
        for number, chunk in enumerate(chunks):
            run = _Run(outdir, chunk, problems if number == 0 else [])
            if os.path.exists(run.run_dir):
                say(f"run {run.run_id} already holds these inputs")
                continue
            runs.append(run)
        if not runs:
            progress.close()
            say(f"nothing new: {outcome.skipped} inputs already in {outdir}")
            outcome.seconds = time.monotonic() - started
            return outcome
        default_groups = groups or max(4, 2 * threads) // (1 if len(runs) == 1 else 2)
        for run in runs:
            run.prepare(default_groups)

        # 2. index: every run's files at once; only the summaries come to this process, the
        # index parts stay on the workers until the group that needs each is decoded.
        files_total = sum(len(run.items) for run in runs)
        progress.stage("indexing", files_total, sum(item["size"] for run in runs for item in run.items))
        owner = {}
        for run in runs:
            run.index_futures = [client.submit(index_file, number, item["path"], run.groups,
                                               os.path.join(run.staging, "spool"), item["hash"], pure=False)
                                 for number, item in enumerate(run.items)]
            run.summary_futures = [client.submit(summary_of, future, pure=False) for future in run.index_futures]
            for number, future in enumerate(run.summary_futures):
                owner[future.key] = (run, number)
        results: dict[tuple[str, int], dict] = {}
        for future, value in as_completed([f for run in runs for f in run.summary_futures], with_results=True):
            run, number = owner[future.key]
            results[run.run_id, number] = value
            progress.advance(1, run.items[number]["size"])
        stage_done("index")

        # 3. decode the flow groups (those a stopped run did not finish), then 4. merge: submitted
        # for every run before waiting on any.
        progress.stage("decoding flow groups", sum(run.groups for run in runs), unit="groups")
        decode_owner = {}
        for run in runs:
            _submit_run(client, run, results, config, make_host, disabled, noticed, decode_owner)
            outcome.reused_groups += run.reused_groups
            progress.advance(run.reused_groups)
        decoded_by: dict[str, set] = {run.run_id: set() for run in runs}
        for future, value in as_completed(list(decode_owner.values()), with_results=True):
            decoded_by[value["run_id"]].add(value["worker"])
            progress.advance(1)
        stage_done("decode")
        progress.stage("merging and writing tables", len(runs), unit="runs")
        for run in runs:
            run.record["decoded_by"] = sorted(decoded_by[run.run_id])
        finished = []
        for future, record in as_completed([run.reduce_future for run in runs], with_results=True):
            finished.append(record)
            progress.advance(1)
        stage_done("merge")

        # 5. commit, in input order
        os.makedirs(os.path.join(outdir, RUNS), exist_ok=True)
        records = {record["run_id"]: record for record in finished}
        for run in runs:
            with open(os.path.join(run.out_dir, "run.json.tmp"), "w", encoding="utf-8") as handle:
                json.dump({**records[run.run_id], "decoded_by": run.record["decoded_by"]}, handle, indent=1)
            os.replace(os.path.join(run.out_dir, "run.json.tmp"), os.path.join(run.out_dir, "run.json"))
            os.replace(run.out_dir, run.run_dir)
            shutil.rmtree(run.staging, ignore_errors=True)
            record = records[run.run_id]
            outcome.run_ids.append(run.run_id)
            outcome.inputs += len(run.good)
            outcome.bytes += sum(run.items[number]["size"] for number in run.good)
            outcome.frames += record.get("frames", 0)
            for name, count in record.get("counts", {}).items():
                outcome.counts[name] = outcome.counts.get(name, 0) + count
            outcome.problems.extend(run.problems)
        progress.close()
        outcome.run_id, outcome.run_dir = runs[0].run_id, runs[0].run_dir
        outcome.seconds = time.monotonic() - started
        return outcome
    finally:
        progress.close()
        client.close()
        if cluster is not None:
            cluster.close()


def _submit_run(client, run: _Run, results: dict, config: AnalysisConfig, make_host, disabled, noticed,
                decode_owner) -> None:
    """Number the run's frames, submit its missing flow groups and its merge (without waiting)."""
    for number, item in enumerate(run.items):
        problem = results[run.run_id, number].get("problem")
        if problem:
            run.problems.append({"path": item["path"], "content_hash": item["hash"], "size": item["size"],
                                 "problem": problem, "noticed": noticed})
        else:
            run.good.append(number)
    for position, number in enumerate(run.good):
        summary = results[run.run_id, number]["summary"]
        summary.index = position
        run.summaries.append(summary)
    bases, overlaps = numbering_plan(run.summaries)
    frame_count = sum(summary.frames for summary in run.summaries)
    keys = {position: client.submit(keys_of, run.index_futures[number], pure=False)
            for position, number in enumerate(run.good)}
    files = [(summary.name, summary.read_path) for summary in run.summaries]
    group_paths = [run.group_path(group) for group in range(run.groups)]
    missing = [group for group in range(run.groups) if not os.path.exists(group_paths[group])]
    run.reused_groups = run.groups - len(missing)
    overlapping = {position: {other: keys[other] for other in overlaps[position]}
                   for position in range(len(run.good)) if overlaps.get(position)}
    decodes = []
    for group in missing:
        parts = [client.submit(part_of, run.index_futures[number], group, pure=False) for number in run.good]
        future = client.submit(decode_group_of_run, run.run_id, group, files, parts, bases, overlapping,
                               frame_count, config, make_host, set(disabled), group_paths[group], pure=False)
        decode_owner[future.key] = future
        decodes.append(future)
    link_files = {summary.index for summary in run.summaries if summary.unsupported_link_types}
    link_keys = {position: keys[position] for position in link_files | {
        other for position in link_files for other in overlaps.get(position, [])}}
    inputs_rows = [{"run_id": run.run_id, "path": summary.name, "content_hash": run.items[number]["hash"],
                    "size": run.items[number]["size"], "frames": summary.frames, "first_time": summary.first_ts,
                    "last_time": summary.last_ts, "start": _utc(summary.first_ts), "notes": summary.notes}
                   for summary, number in zip(run.summaries, run.good)]
    problem_rows = [{**problem, "run_id": run.run_id} for problem in run.problems]
    run.record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run.run_id,
        "created": noticed.isoformat(),
        "groups": run.groups,
        "inputs": [{k: v for k, v in row.items() if k != "start"} for row in inputs_rows],
        "input_problems": [{**{k: v for k, v in row.items() if k != "noticed"},
                            "noticed": row["noticed"].isoformat()} for row in problem_rows],
        "options": dict(config.options),
    }
    # The merge waits for this run's groups (passed as dependencies), not for the whole batch.
    run.reduce_future = client.submit(
        reduce_run, run.summaries, group_paths, config, make_host, set(disabled), bases, link_keys, run.out_dir,
        run.run_id, {"inputs": inputs_rows, "input_problems": problem_rows}, run.record, decodes, pure=False)


def decode_group_of_run(run_id: str, *args) -> dict:
    return {**decode_group(*args), "run_id": run_id}


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _utc(timestamp: float | None):
    return None if timestamp is None else datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
