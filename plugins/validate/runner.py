"""Validate many objects: dciodvfy processes in parallel, each distinct object once (the cache).

Reading bytes from the capture happens on the calling thread (the capture map is not
shared with workers); each worker thread only waits on its dciodvfy process, which
releases the GIL.  At most ``2 × workers`` objects, and beyond the first of them at most
``PENDING_BYTES`` in all, are held in memory at once, so a day of traffic costs the memory
of a few objects, not of the day.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from dicomtui.core.model.validation import ValidationResult
from dicomtui.plugins.validate.cache import ValidationCache, object_key
from dicomtui.plugins.validate.objects import PreparedObject, prepare
from dicomtui.plugins.validate.tool import Dicom3Tools, run_dciodvfy


@dataclass(slots=True)
class Validated:
    results: dict[int, ValidationResult] = field(default_factory=dict)
    prepared: dict[int, PreparedObject] = field(default_factory=dict)  # without their bytes
    keys: dict[int, str] = field(default_factory=dict)  # message -> cache key (same key: the same object)
    ran: int = 0  # dciodvfy processes started (the rest came from the cache)


PENDING_BYTES = 256 << 20


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _check(tools: Dicom3Tools, prepared: PreparedObject) -> ValidationResult:
    output = run_dciodvfy(tools, prepared.part10)
    return ValidationResult(tool=tools.label("dciodvfy"), errors=output.errors, warnings=output.warnings,
                            lines=output.lines, iod=output.iod, failed=output.failed)


def validate_messages(analysis, indexes: list[int], tools: Dicom3Tools, cache: ValidationCache,
                      workers: int, max_bytes: int) -> Validated:
    done = Validated()
    label = tools.label("dciodvfy")
    workers = max(1, workers)
    pending: dict[Future, tuple[PreparedObject, str]] = {}
    same_object: dict[str, list[PreparedObject]] = {}  # a second copy waits for the first's result

    pending_bytes: dict[str, int] = {}

    def finish(future: Future) -> None:
        prepared, key = pending.pop(future)
        pending_bytes.pop(key, None)
        result = future.result()
        cache.put(key, result)
        for waiting in [prepared, *same_object.pop(key, [])]:
            done.results[waiting.index] = _with_context(result, waiting)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dciodvfy") as pool:
        for index in indexes:
            message = analysis.messages[index]
            prepared = prepare(analysis, message, max_bytes)
            done.prepared[index] = _without_bytes(prepared)
            if prepared.skipped:
                done.results[index] = ValidationResult(tool=label, skipped=prepared.skipped)
                continue
            key = object_key(label, prepared.part10)
            done.keys[index] = key
            if key in same_object:
                same_object[key].append(_without_bytes(prepared))
                continue
            cached = cache.get(key)
            if cached is not None:
                done.results[index] = _with_context(cached, prepared)
                continue
            same_object[key] = []
            pending[pool.submit(_check, tools, prepared)] = (_without_bytes(prepared), key)
            pending_bytes[key] = len(prepared.part10)
            done.ran += 1
            while len(pending) >= 2 * workers or (len(pending) > 1 and sum(pending_bytes.values()) > PENDING_BYTES):
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in finished:
                    finish(future)
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in finished:
                finish(future)
    return done


def _without_bytes(prepared: PreparedObject) -> PreparedObject:
    from dataclasses import replace

    return replace(prepared, part10=b"")


def _with_context(result: ValidationResult, prepared: PreparedObject) -> ValidationResult:
    from dataclasses import replace

    return replace(result, validated_as=prepared.validated_as)
