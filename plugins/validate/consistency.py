"""Study-level consistency: the objects of one study in the capture checked together with ``dcentvfy``.

dcentvfy compares the patient, study, series and frame-of-reference attributes of the
files it is given (two images of one study naming different patients, one series in two
studies...).  It reads only files, so each study's objects are written, as the Part 10
exporter writes them, into a private temporary folder that is removed when the check ends
(also on an error).  Only studies with two or more validated objects are checked, and an
object dciodvfy crashed on is left out (dcentvfy crashes on it too, and would lose the
study's other findings).

dcentvfy also reports "Missing SOPInstanceUID that was referenced": an object refers to
another the capture does not carry (a prior, the plan a dose refers to).  The archive may
well hold it, so those lines are kept as notes, not counted as errors.
"""

from __future__ import annotations

import os
import re
import tempfile

from dicomtui.core.model.validation import ERROR, NOTE, StudyConsistency, ValidatorLine
from dicomtui.plugins.validate.objects import prepare
from dicomtui.plugins.validate.tool import Dicom3Tools, run_dcentvfy

_OUTSIDE_CAPTURE = "Missing SOPInstanceUID that was referenced"
MAX_OBJECTS_PER_STUDY = 2000  # dcentvfy holds them all; a larger study is checked on its first ones


def check_studies(analysis, studies: dict[str, list[int]], tools: Dicom3Tools, max_bytes: int
                  ) -> list[StudyConsistency]:
    """One StudyConsistency per study of at least two objects; ``studies``: Study Instance UID -> messages."""
    found = []
    for study, indexes in studies.items():
        indexes = indexes[:MAX_OBJECTS_PER_STUDY]
        if len(indexes) < 2:
            continue
        found.append(_check_study(analysis, study, indexes, tools, max_bytes))
    return found


def _check_study(analysis, study: str, indexes: list[int], tools: Dicom3Tools, max_bytes: int
                 ) -> StudyConsistency:
    label = tools.label("dcentvfy")
    with tempfile.TemporaryDirectory(prefix="dicomtui-dcentvfy-") as folder:
        paths = []
        for index in indexes:
            prepared = prepare(analysis, analysis.messages[index], max_bytes)
            if prepared.skipped:
                continue
            path = os.path.join(folder, f"{index}.dcm")
            with open(path, "wb") as stream:
                stream.write(prepared.part10)
            paths.append(path)
        if len(paths) < 2:
            return StudyConsistency(label, study, tuple(indexes))
        output = run_dcentvfy(tools, paths)
    lines = []
    errors = output.errors
    for line in output.lines:
        text = line.text.replace(folder + "/", "")  # the folder is gone: name objects by message number
        text = re.sub(r"<(\d+)\.dcm>", lambda match: f"<message {int(match.group(1)) + 1}>", text)
        if line.severity == ERROR and _OUTSIDE_CAPTURE in text:
            errors -= 1
            lines.append(ValidatorLine(NOTE, text))
        else:
            lines.append(ValidatorLine(line.severity, text))
    return StudyConsistency(label, study, tuple(indexes), errors=errors, warnings=output.warnings,
                            lines=tuple(lines), failed=output.failed)


def messages_named(line: str) -> list[int]:
    """Message indexes a dcentvfy line names (``<message 7>``)."""
    return [int(number) - 1 for number in re.findall(r"<message (\d+)>", line)]
